"""The per-host risk policy travels in the rule pack: packaged from a YAML file into pack.json
(checksummed), read back by validate, by the lifecycle's pack check and by the service; a bad
policy refuses the pack with the reason; a pack without one raises no risk alerts; the shipped
pack 3 is pack 2 with the policy that was code before, and gives the same alerts as that code did."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from scorer.config import InferenceSettings, RuleSettings, Settings
from scorer.errors import ModelError
from scorer.events.structs import EventKind
from scorer.lifecycle.loader import Refused
from scorer.lifecycle.rulepacks import check_pack, identity
from scorer.pipeline.source import input_record
from scorer.rules import compile_rules
from scorer.rules.__main__ import main
from scorer.rules.annotate import RuleStage
from scorer.rules.build import DEFAULT_RISK, PackRefused, package
from scorer.rules.pack import read_golden, read_pack, write_pack
from scorer.rules.risk import RISK_SEVERITY, read_risk
from scorer.rules.validate import validate_pack
from scorer.service.build import build_scorer
from tests.rules.helpers import SHIPPED, golden_case, rule, write_rules
from tests.rules.test_risk import FORMER
from tests.support.paths import MODEL_REPOSITORY, ROOT

MEDIUM = rule("sel:\n  Image|endswith: '\\whoami.exe'\ncondition: sel", title="Whoami", level="medium")
POLICY_YAML = "threshold: 2\nwindow_s: 600\npoints: {medium: 1, high: 2}\nmodel_points: 1\nmodel_floor: 0.5\n"


def _package(tmp_path: Path, risk_text: str | None) -> tuple[int, Path]:
    src = write_rules(tmp_path / "src", {"rules/windows/a.yml": MEDIUM})
    out = tmp_path / "repo" / "p" / "1"
    extra = []
    if risk_text is not None:
        (tmp_path / "risk.yml").write_text(risk_text)
        extra = ["--risk", str(tmp_path / "risk.yml")]
    args = ["package", "--source", str(src), "--out", str(out), "--golden", str(golden_case(tmp_path / "golden")),
            "--name", "p", *extra]
    return main(args), out


def test_package_carries_the_policy_and_validate_load_and_check_read_it(tmp_path: Path) -> None:
    code, out = _package(tmp_path, POLICY_YAML)
    assert code == 0
    policy, problems = read_risk(tmp_path / "risk.yml")
    assert policy is not None and not problems
    assert json.loads((out / "pack.json").read_text())["risk"] == policy.to_json()
    assert validate_pack(out) == []
    assert read_pack(out).risk == policy
    assert RuleStage.load(out.parent.parent, "p", "1").risk == policy
    assert check_pack(out.parent.parent, "p", "1").risk == policy


def test_a_pack_without_a_policy_has_none(tmp_path: Path) -> None:
    code, out = _package(tmp_path, None)
    assert code == 0 and "risk" not in json.loads((out / "pack.json").read_text())
    assert validate_pack(out) == [] and check_pack(out.parent.parent, "p", "1").risk is None


def test_package_refuses_a_bad_policy_file_with_its_path_and_reason(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _package(tmp_path, "threshold: 1.5\nwindow_s: 1800\npoints: {medium: 1, hihg: 2}\n")
    assert code == 1 and not out.exists()
    err = capsys.readouterr().err
    assert f"risk policy {tmp_path / 'risk.yml'} refused" in err
    assert f"{tmp_path / 'risk.yml'}: risk policy: points for unknown level(s) 'hihg'" in err
    with pytest.raises(PackRefused, match="unreadable"):
        package(tmp_path / "src", tmp_path / "x", risk=tmp_path / "no-such.yml")


def _pack_with_policy(tmp_path: Path, risk: dict[str, Any]) -> Path:
    """A pack whose manifest carries ``risk`` as it is, checksums and all: what a hand-edited
    and re-summed pack.json, or another tool's pack writer, would give."""
    src = write_rules(tmp_path / "src", {"rules/windows/a.yml": MEDIUM})
    compiled, errors = compile_rules(src)
    assert not errors
    out = tmp_path / "repo" / "p" / "1"
    golden = [{"case": "c", "event": {"Event": {"System": {"EventID": 1, "Channel": "Security"}}}, "hits": [],
               "must_fire": []}]
    write_pack(out, compiled, [], name="p", version="1", source_commit="", license_text="DRL", golden=golden,
               risk=risk)
    return out


@pytest.mark.parametrize(("risk", "reason"), [
    ({"threshold": 0, "window_s": 1800, "points": {"medium": 1}},
     "pack.json: risk policy: threshold and window must be positive (0, 1800)"),
    ({"threshold": 1.5, "window": 1800, "points": {"medium": 1}}, "pack.json: risk policy: unknown field(s) window"),
    ({"threshold": 1.5, "window_s": 1800, "points": {"medium": "one"}},
     "pack.json: risk policy: points.medium must be a finite number, not 'one'"),
])
def test_a_pack_with_a_bad_policy_is_refused_at_validate_and_by_the_scorer(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], risk: dict[str, Any], reason: str) -> None:
    out = _pack_with_policy(tmp_path, risk)
    problems = validate_pack(out)
    assert len(problems) == 1 and reason in problems[0], problems
    assert main(["validate", str(out)]) == 1
    assert reason in capsys.readouterr().err
    with pytest.raises(Refused) as refused:  # what every scorer runs before it installs a pack
        check_pack(out.parent.parent, "p", "1")
    assert refused.value.reason == "load" and reason in str(refused.value)
    with pytest.raises(ModelError, match="risk policy"):
        RuleStage.load(out.parent.parent, "p", "1")


def test_shipped_pack_3_is_pack_2_with_the_policy_that_was_code() -> None:
    old, new = SHIPPED.parent / "2", SHIPPED
    assert new.name == "3" and read_pack(old).risk is None and read_pack(new).risk == FORMER
    assert read_risk(ROOT / DEFAULT_RISK) == (FORMER, [])
    for name in ("ir.json.gz", "sources.jsonl.gz", "golden.jsonl.gz", "LICENSE"):
        assert (old / name).read_bytes() == (new / name).read_bytes(), name
    a, b = json.loads((old / "pack.json").read_text()), json.loads((new / "pack.json").read_text())
    assert {k: v for k, v in b.items() if k != "risk"} == {**a, "version": "3"}
    # What the model's features read of the pack is unchanged: a model trained on either
    # serves on the other without a retraining warning (scorer.lifecycle.rulepacks).
    assert identity(old).features == identity(new).features


def _golden_records(pack: Path) -> list[bytes]:
    """The pack's golden events, spread over 7 hosts, 10 s apart in event time: many distinct
    medium and low rules meet on each host within the policy's window."""
    out = []
    start = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    for i, entry in enumerate(read_golden(pack)):
        raw = json.loads(json.dumps(entry["event"]))
        system = raw["Event"]["System"]
        system["Computer"] = f"ws{i % 7}"
        when = datetime.fromtimestamp(start + 10 * i, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        system["TimeCreated"] = {"#attributes": {"SystemTime": when}}
        out.append(json.dumps({**raw, "uid": f"g{i}"}).encode())
    return out


async def _alerts(version: str, risk: Any = "pack") -> dict[str, str]:
    """Event uid -> severity of the alerts of the golden records through the real service path
    (the shipped EDR model on ONNX Runtime, the pack ``version``), in batches of 32;
    ``risk``: replace the pack's policy with this one."""
    settings = Settings(kinds=(EventKind.EDR,),
                        inference=InferenceSettings(backend="onnxruntime", model_repository=MODEL_REPOSITORY),
                        rules=RuleSettings(repository=SHIPPED.parent.parent, version=version))
    scorer = build_scorer(settings)
    if risk != "pack":
        rt = scorer.runtimes[EventKind.EDR]
        assert rt.rules is not None
        scorer.runtimes[EventKind.EDR] = msgspec.structs.replace(rt, rules=dataclasses.replace(rt.rules, risk=risk))
    records = _golden_records(SHIPPED)
    found: dict[str, str] = {}
    await scorer.backend.start()
    try:
        for start in range(0, len(records), 32):
            batch = [input_record(EventKind.EDR, v, None, "events.edr", 0, start + i)
                     for i, v in enumerate(records[start:start + 32])]
            for alert in (await scorer.score(batch)).alerts:
                finding = msgspec.json.decode(alert.value)
                found[finding["unmapped"]["scorer"]["event_uid"]] = finding["severity"]
    finally:
        await scorer.backend.close()
    return found


async def test_the_pack_policy_gives_the_alerts_the_code_constant_gave() -> None:
    from_pack = await _alerts("3")
    as_before = await _alerts("2", risk=FORMER)  # pack 2 with the policy as the code applied it
    without = await _alerts("2")  # pack 2 alone: no policy, no risk alerts
    assert from_pack == as_before
    risk_only = {uid: sev for uid, sev in from_pack.items() if uid not in without}
    assert risk_only and set(risk_only.values()) == {RISK_SEVERITY}, risk_only
    # Risk adds alerts and may raise a model alert's severity to its own; it removes or lowers none.
    order = ["Informational", "Low", "Medium", "High", "Critical"]
    assert all(order.index(from_pack[uid]) >= order.index(sev) for uid, sev in without.items())
    print(f"golden records: {len(from_pack)} alerts with the pack's policy, {len(without)} without, "
          f"{len(risk_only)} risk alerts")
