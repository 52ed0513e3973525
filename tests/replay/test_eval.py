"""Evaluation on small hand-made inputs whose right answers are known (the HTML report in a
real headless Chromium: test_report_browser.py)."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from replay.eval import metrics
from replay.eval.evaluate import evaluate
from replay.eval.join import join
from replay.eval.report import MAX_HOURS, build_report
from replay.eval.truth import TruthRow, TruthWriter
from replay.record import write_envelopes
from scorer.captures import is_malicious
from scorer.captures.recorded import Envelope
from scorer.events import EventKind
from scorer.pipeline.outcome import ScoredEvent

pytest.importorskip("matplotlib", reason="the report needs the 'replay' extra (matplotlib)")
Image = pytest.importorskip("PIL.Image")

T0 = 1_600_000_000.0
# (uid, kind, label, capture, capture_label, score, alerted)
ROWS: list[tuple[str, str, str | None, str, str | None, float, bool]] = [
    ("n1", "netflow", "DDoS", "cic", None, 0.95, True),  # TP
    ("n2", "netflow", "DDoS", "cic", None, 0.40, False),  # FN
    ("n3", "netflow", "BENIGN", "cic", None, 0.90, True),  # FP
    ("n4", "netflow", "BENIGN", "cic", None, 0.10, False),  # TN
    ("n5", "netflow", "BENIGN", "cic", None, 0.05, False),  # TN
    ("n6", "netflow", "Background:default", "zeek", None, 0.99, True),  # unknown truth, alerted
    ("n7", "netflow", "Malicious:scan", "zeek", None, 0.80, True),  # TP, in a later hour
    ("e1", "edr", None, "otrf-a", "attack:T1003", 0.20, False),
    ("e2", "edr", None, "otrf-a", "attack:T1003", 0.85, True),
    ("e3", "edr", None, "otrf-b", "attack:T1059", 0.10, False),
]
NOT_SCORED = "n8"  # a malicious event the scorer never scored (dead-lettered)


def write_inputs(
    tmp_path: Path, *, kafka: bool, clock: int | None = None
) -> tuple[Path, Path, Path]:
    """Truth, scores and alerts of ROWS; ``kafka``: with Kafka timestamps of type ``clock``
    (0 CreateTime, 1 LogAppendTime, None: as truth files written before types were kept)."""
    enc = msgspec.json.Encoder()
    truth = tmp_path / "truth.jsonl"
    with TruthWriter(truth) as w:
        for i, (uid, kind, label, cap, cap_label, _, _) in enumerate(ROWS):
            where: dict[str, Any] = (
                {"produced_ms": 1000 * i, "produced_ts_type": clock} if kafka else {}
            )
            w.write(
                TruthRow(
                    uid,
                    kind,
                    label,
                    is_malicious(label),
                    cap,
                    cap_label,
                    T0 + 4000 * (uid == "n7") + i,
                    **where,
                )
            )
        w.write(TruthRow(NOT_SCORED, "netflow", "DDoS", True, "cic", None, T0))
    scores = [
        ScoredEvent(EventKind(k), u, s, "m", "1", "onnxruntime", a) for u, k, _, _, _, s, a in ROWS
    ]
    findings: list[dict[str, Any]] = [
        {
            "finding_info": {"related_events": [{"uid": u, "type": k}]},
            "severity": "High",
            "unmapped": {"scorer": {"score": s, "kind": k}},
        }
        for u, k, _, _, _, s, a in ROWS
        if a
    ]
    findings.append(findings[0])  # at-least-once delivery: a duplicate
    findings.append({"finding_info": {"related_events": [{"uid": "stranger"}]}})  # not ours
    s_path, a_path = tmp_path / "scores.jsonl", tmp_path / "alerts.jsonl"
    if kafka:  # as `scorer record` / `replay --wait` write them: envelopes with timestamps
        uids = [f["finding_info"]["related_events"][0]["uid"] for f in findings]
        produced = {u: 1000 * i for i, (u, *_) in enumerate(ROWS)}
        write_envelopes(
            [
                Envelope("scores", 0, i, 1000 * i + 5, value=enc.encode(s))
                for i, s in enumerate(scores)
            ],
            s_path,
        )
        write_envelopes(
            [
                Envelope("alerts.x", 0, i, produced.get(u, 0) + 20 + i, clock or 0,
                         value=enc.encode(f))
                for i, (u, f) in enumerate(zip(uids, findings, strict=True))
            ],
            a_path,
        )
    else:
        s_path.write_bytes(b"".join(enc.encode(s) + b"\n" for s in scores))
        a_path.write_bytes(b"".join(enc.encode(f) + b"\n" for f in findings))
    return truth, s_path, a_path


def test_binary_metrics_and_undefined_ratios() -> None:
    y = np.array([1, 1, 0, 0, 0], dtype=bool)
    a = np.array([1, 0, 1, 0, 0], dtype=bool)
    m = metrics.binary(y, a)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 1, 1, 2)
    assert m["precision"] == 0.5 and m["recall"] == 0.5 and m["f1"] == 0.5
    none = metrics.binary(np.zeros(3, bool), np.zeros(3, bool))
    assert none["precision"] is None and none["recall"] is None and none["f1"] is None


def test_roc_and_pr_areas() -> None:
    y = np.array([0, 0, 1, 1], dtype=bool)
    perfect = np.array([0.1, 0.2, 0.8, 0.9])
    assert metrics.roc(y, perfect)["auc"] == 1.0  # type: ignore[index]
    assert metrics.pr(y, perfect)["average_precision"] == 1.0  # type: ignore[index]
    assert metrics.roc(y, perfect[::-1])["auc"] == 0.0  # type: ignore[index]
    assert metrics.roc(y, np.full(4, 0.5))["auc"] == 0.5  # type: ignore[index]  # ties
    assert metrics.roc(np.ones(3, bool), perfect[:3]) is None, "one class: no curve"
    rng = np.random.default_rng(0)
    y_big = rng.random(5000) < 0.3
    auc = metrics.roc(y_big, rng.random(5000))["auc"]  # type: ignore[index]
    assert 0.45 < auc < 0.55
    assert len(metrics.roc(y_big, rng.random(5000))["fpr"]) <= metrics.MAX_CURVE_POINTS  # type: ignore[index]


@pytest.mark.parametrize("kafka", [False, True])
def test_report_counts_are_honest(tmp_path: Path, kafka: bool) -> None:
    truth, scores, alerts = write_inputs(tmp_path, kafka=kafka)
    r = evaluate(truth, scores, alerts, tmp_path / "report")
    rec = r["reconciliation"]
    assert rec["events"] == 11 and rec["known_truth"] == 7 and rec["unknown_truth"] == 4
    assert rec["scored"] == 10 and rec["not_scored"] == 1
    assert rec["duplicates"] == {"alerts": 1} and rec["unmatched"] == {"scores": 0, "alerts": 1}
    assert rec["alert_score_disagreements"] == 0
    # the never-scored DDoS flow counts as missed; Background is not counted as benign
    overall = r["overall"]["all"]
    assert (overall["tp"], overall["fp"], overall["fn"], overall["tn"]) == (2, 1, 2, 2)
    assert overall["precision"] == pytest.approx(2 / 3, abs=1e-6) and overall["recall"] == 0.5
    assert r["unknown_truth"]["events"] == 4 and r["unknown_truth"]["alerted"] == 2
    assert r["overall"]["edr"]["events"] == 0, "OTRF events have capture labels only"
    classes = {(c["kind"], c["label"]): c for c in r["classes"]}
    assert (
        classes[("netflow", "DDoS")]["alerted"] == 1 and classes[("netflow", "DDoS")]["events"] == 3
    )
    assert classes[("netflow", "BENIGN")]["alert_rate"] == pytest.approx(1 / 3, abs=1e-6)
    weak = r["capture_labels"]
    assert (weak["attack_captures"], weak["detected"], weak["share_detected"]) == (2, 1, 0.5)
    hours = r["alerts_per_hour"]["netflow"]
    assert len(hours["hours"]) == 2 and sum(hours["events"]) == 8 and sum(hours["alerts"]) == 4
    assert r["curves"]["netflow"]["roc"]["auc"] > 0.5 and r["curves"]["edr"]["roc"] is None
    lat = r["latency_ms"]
    if kafka:
        assert lat["available"] and lat["alert"]["n"] == 5 and lat["alert"]["min"] >= 20
    else:
        assert not lat["available"] and lat["why"].startswith("n/a")
    # report.json holds the same numbers
    assert msgspec.json.decode((tmp_path / "report" / "report.json").read_bytes()) == r


@pytest.mark.parametrize(
    ("clock", "axis", "alert_clock"),
    [
        (None, "ms, event timestamp -> alert sent", "CreateTime: set by the producer"),
        (0, "ms, event sent -> alert sent", "CreateTime: set by the producer"),
        (1, "ms, event appended -> alert appended", "LogAppendTime: set by the broker"),
    ],
)
def test_latency_says_which_timestamps_it_compares(
    tmp_path: Path, clock: int | None, axis: str, alert_clock: str
) -> None:
    truth, scores, alerts = write_inputs(tmp_path, kafka=True, clock=clock)
    lat = build_report(join(truth, scores, alerts), {"alerts": str(alerts)})["latency_ms"]
    assert lat["axis"] == axis and lat["alert_timestamp"].startswith(alert_clock)
    if clock is None:
        assert lat["event_timestamp"].startswith("not recorded: CreateTime unless")


def per_hour(tmp_path: Path, hours: list[float]) -> dict[str, Any]:
    truth = tmp_path / "truth.jsonl"
    with TruthWriter(truth) as w:
        for i, h in enumerate(hours):
            w.write(TruthRow(f"u{i}", "siem", "benign", False, "c", None, T0 + 3600 * h))
    hourly: dict[str, Any] = build_report(join(truth, None, None), {"alerts": None})["alerts_per_hour"]["siem"]
    return hourly


def test_alerts_per_hour_has_every_hour_between_first_and_last(tmp_path: Path) -> None:
    # T0 is 12:26:40 UTC: two events in that hour, none in the next three, two at 16:xx
    h = per_hour(tmp_path, [0.0, 0.5, 4.0, 4.2])
    assert h["hours"] == [f"2020-09-13 {hh}:00" for hh in range(12, 17)]
    assert h["events"] == [2, 0, 0, 0, 2] and h["alerts"] == [0] * 5 and h["bucket_hours"] == 1
    # longer than MAX_HOURS: wider buckets, still continuous, never more than MAX_HOURS
    long = per_hour(tmp_path, [0.0, 2.5 * MAX_HOURS])
    assert long["bucket_hours"] == 3 and len(long["hours"]) <= MAX_HOURS
    assert long["events"][0] == long["events"][-1] == 1 and sum(long["events"]) == 2


def test_html_is_self_contained_with_decodable_plots(tmp_path: Path) -> None:
    truth, scores, alerts = write_inputs(tmp_path, kafka=True)
    evaluate(truth, scores, alerts, tmp_path / "report")
    html = (tmp_path / "report" / "report.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 6  # ROC, PR, scores, classes, per hour, latency
    for data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as img:
            img.verify()
    assert "Unknown ground truth (not counted as benign)" in html
