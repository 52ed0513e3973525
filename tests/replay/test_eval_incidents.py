"""``scorer eval``'s incidents section: synthetic findings with known truth (grouping, phases,
benign-only incidents, Create delay, labels kept out of the grouping), the CLI writing it
with its plot, and the issue 14 goals measured on a real AIT-ADS scenario (``data``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from replay.eval.incident_goals import Scenario
from replay.eval.incidents import correlate, prepare, section
from replay.eval.truth import TruthRow
from scorer.incidents import Policy
from tests.incidents.findings import finding
from tests.support.paths import DATA_DIR, ROOT

DAY = 86_400.0
T0 = 1_700_000_000.0


def _case(specs: list[tuple[str, float, str, str | None]]) -> tuple[list[dict[str, Any]], list[TruthRow]]:
    """(host, seconds after T0, event uid, attack label or None for benign) -> findings + truth."""
    findings, truth = [], []
    for host, dt, uid, label in specs:
        f = finding("siem", T0 + dt, host=host, uid=f"siem_classifier:1:{uid}")
        f["finding_info"]["related_events"][0]["uid"] = uid
        findings.append(f)
        truth.append(TruthRow(uid, "siem", label or "benign", label is not None, "cap", None, T0 + dt))
    return findings, truth


def _section(findings: list[dict[str, Any]], truth: list[TruthRow], policy: Policy) -> dict[str, Any]:
    by_uid = {r.uid: r for r in truth}
    return section(truth, correlate(prepare(findings, by_uid), by_uid, policy), policy)


def test_incidents_phases_benign_only_and_create_delay() -> None:
    findings, truth = _case([
        ("web1", 0, "e1", None),  # a benign finding opens web1's episode
        ("web1", 60, "e2", "dirb"),  # the attack joins it: created before the phase began
        ("web1", 120, "e3", "dirb"),
        ("db1", 600, "e4", "crack"),  # opens db1's incident at the phase's first event
        ("mail", 700, "e5", None),  # benign-only
        ("mail", 700 + 2 * 3600, "e6", None),  # past the quiet period: a second benign-only one
    ])
    # An attack event the scorer did not alert on: it counts for the phase's first event.
    truth.append(TruthRow("e0", "siem", "crack", True, "cap", None, T0 + 500))
    s = _section(findings, truth, Policy(quiet_s=3600, max_span_s=DAY))
    assert s["alerts"] == 6 and s["incidents"] == 4 and s["benign_only"] == 2
    cap = s["captures"][0]
    assert cap["with_attack"] == 2 and cap["phases_alerted"] == 2 and cap["phases_landed"] == 2
    phases = {p["phase"]: p for p in s["phases"]}
    assert phases["dirb"]["alerts"] == 2 and phases["dirb"]["incidents"] == 1
    assert phases["dirb"]["create_delay_s"] == -60.0  # web1's incident was open a minute before
    assert phases["dirb"]["record_delay_s"] == 0.0  # its Update (the incident doubled) came with e2
    assert phases["crack"]["first_alert_delay_s"] == 100.0  # e0 at +500 was missed, e4 at +600 alerted
    assert phases["crack"]["create_delay_s"] == phases["crack"]["record_delay_s"] == 100.0
    assert s["findings_per_incident"]["max"] == 3
    assert sum(d["incidents"] for d in s["per_day"]) == 4
    assert cap["goal_phases"] and not cap["goal_ratio"]  # 6 alerts in 4 incidents


def test_labels_never_steer_the_grouping() -> None:
    """The same findings under opposite truth give the same incidents, member for member."""
    specs = [(f"h{i % 3}", i * 900.0, f"e{i}", "dirb" if i % 2 else None) for i in range(40)]
    findings, truth = _case(specs)
    flipped = [msgspec.structs.replace(r, malicious=not r.malicious, label="x" if not r.malicious else "benign")
               for r in truth]
    policy = Policy(quiet_s=1800, max_span_s=6 * 3600)
    runs = []
    for rows in (truth, flipped):
        by_uid = {r.uid: r for r in rows}
        runs.append(correlate(prepare(findings, by_uid), by_uid, policy).member_of)
    assert runs[0] == runs[1] and len(runs[0]) == 40


def test_unattributed_alert_leaves_its_phase_unlanded() -> None:
    findings, truth = _case([("web1", 0, "e1", None), ("web1", 10, "e2", "exfil")])
    f = findings[1]
    del f["evidences"][0]["device"], f["evidences"][0]["data"]["host"]  # names no host, IP or user
    s = _section(findings, truth, Policy())
    assert s["unattributed"] == 1 and s["incidents"] == 1
    (phase,) = s["phases"]
    assert phase["alerts"] == 1 and not phase["landed"] and phase["create_delay_s"] is None
    assert not s["captures"][0]["goal_phases"]


def test_longer_quiet_period_merges_episodes() -> None:
    findings, truth = _case([("web1", i * 3 * 3600.0, f"e{i}", None) for i in range(8)])  # every 3 h
    assert _section(findings, truth, Policy(quiet_s=3600))["incidents"] == 8
    assert _section(findings, truth, Policy(quiet_s=4 * 3600, max_span_s=DAY))["incidents"] == 1


def test_eval_cli_writes_the_section_and_its_plot(tmp_path: Path) -> None:
    findings, truth = _case([("web1", 0, "e1", "dirb"), ("web1", 30, "e2", "dirb"), ("mail", 40, "e3", None)])
    (tmp_path / "truth.jsonl").write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in truth))
    (tmp_path / "alerts.jsonl").write_bytes(b"".join(msgspec.json.encode(f) + b"\n" for f in findings))
    out = tmp_path / "report"
    run = subprocess.run([sys.executable, "-m", "scorer.cli", "eval", "--truth", str(tmp_path / "truth.jsonl"),
                          "--alerts", str(tmp_path / "alerts.jsonl"), "--out", str(out), "--quiet-s", "600"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "incidents 2 from 3 alerts" in run.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["incidents"]["policy"]["quiet_s"] == 600
    html = (out / "report.html").read_text()
    assert "Incidents (the incident core" in html and 'alt="Incidents" src="data:image/png;base64,' in html


@pytest.mark.data
def test_goals_measured_on_a_real_aitads_scenario(tmp_path: Path) -> None:
    """shaw, scored by the embedded scorer, grouped with the policy the other half chose."""
    capture = DATA_DIR / "siem" / "ait-ads" / "shaw_alerts.csv.gz"
    if not capture.exists():
        pytest.skip(f"real data not found at {capture} (set SCORER_DATA_DIR)")
    run = subprocess.run([sys.executable, "-m", "scorer.cli", "replay", str(capture), "--to", "embedded", "--fast",
                          "--no-progress", "--no-incidents", "--out", str(tmp_path / "shaw")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    shaw = Scenario(tmp_path / "shaw")
    default, tuned = shaw.measure(Policy()), shaw.measure(Policy(quiet_s=12 * 3600, max_span_s=DAY))
    for r in (default, tuned):
        assert r["phases_alerted"] >= 5 and r["phases_landed"] == r["phases_alerted"], r
        assert r["alerts"] == sum(1 for _ in (tmp_path / "shaw" / "alerts.jsonl").open("rb"))
    # A longer quiet period can only merge episodes: fewer incidents, fewer benign-only ones.
    assert tuned["incidents"] < default["incidents"]
    assert tuned["benign_only"] <= default["benign_only"]
    print(f"\nshaw: default {default['incidents']} incidents ({default['benign_only_per_day']} benign-only/day), "
          f"12 h / 1 d {tuned['incidents']} ({tuned['benign_only_per_day']}/day), {tuned['alerts']} alerts")


def test_capture_labelled_truth_gives_weak_phases_and_unknown_incidents() -> None:
    """OTRF-like: events of unknown truth in a capture labelled with its technique."""
    findings, truth = _case([("ws1", 0, "e1", None), ("ws1", 30, "e2", None), ("ws2", 0, "e3", None)])
    truth = [msgspec.structs.replace(r, malicious=None, label=None,
                                     capture_label="attack:T1003.001" if r.uid != "e3" else None) for r in truth]
    truth.append(TruthRow("e9", "edr", None, None, "cap", "attack:T1003.001", T0 - 5))  # not alerted
    s = _section(findings, truth, Policy())
    assert s["incidents"] == 2 and s["benign_only"] == 0 and s["unknown_truth"] == 2
    (phase,) = s["phases"]
    assert phase["weak"] and phase["phase"] == "attack:T1003.001" and phase["events"] == 3
    assert phase["landed"] and phase["alerts"] == 2 and phase["create_delay_s"] == 5.0


def test_a_re_delivered_alert_counts_once() -> None:
    findings, truth = _case([("web1", 0, "e1", "dirb"), ("web1", 5, "e2", "dirb")])
    s = _section([*findings, findings[0]], truth, Policy())
    assert s["alerts"] == 2 and s["duplicates"] == 1 and s["findings_per_incident"]["max"] == 2
