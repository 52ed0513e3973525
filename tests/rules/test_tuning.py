"""A pack's tuning: named high/critical rules stay features and evidence but alert on nothing alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scorer.events.structs import Event, EventKind
from scorer.pipeline.records import InputRecord
from scorer.pipeline.rules import rule_alerts
from scorer.rules import RuleEngine
from scorer.rules.__main__ import main
from scorer.rules.annotate import RuleStage
from scorer.rules.pack import read_pack
from scorer.rules.tuning import Tuned, apply_tuning, read_tuning
from tests.rules.helpers import SHIPPED, golden_case, rule, sysmon, write_rules

WHOAMI = rule("sel:\n  Image|endswith: '\\whoami.exe'\ncondition: sel", title="Whoami")
VSS = rule("sel:\n  CommandLine|contains: 'vssadmin delete'\ncondition: sel", level="critical", title="Vss",
           rule_id="00000000-0000-0000-0000-000000000002")
WHOAMI_ID = "00000000-0000-0000-0000-000000000001"


def _tuning(path: Path, *entries: dict[str, str]) -> Path:
    path.write_text(json.dumps({"feature_only": list(entries)}))  # JSON is YAML
    return path


def _package(tmp_path: Path, tuning: Path) -> tuple[int, Path]:
    src = write_rules(tmp_path / "src", {"rules/windows/a.yml": WHOAMI, "rules/windows/b.yml": VSS})
    out = tmp_path / "repo" / "pack" / "1"
    return main(["package", "--source", str(src), "--out", str(out), "--golden", str(golden_case(tmp_path / "golden")),
                 "--tuning", str(tuning)]), out


def test_a_tuned_rule_keeps_its_level_and_hits_but_raises_no_alert(tmp_path: Path) -> None:
    tuning = _tuning(tmp_path / "t.yml", {"id": WHOAMI_ID, "title": "Whoami", "reason": "admins run it all day"})
    code, out = _package(tmp_path, tuning)
    assert code == 0
    manifest = json.loads((out / "pack.json").read_text())
    assert manifest["tuning"] == [{"id": WHOAMI_ID, "title": "Whoami", "reason": "admins run it all day"}]
    assert main(["validate", str(out), "--against", "none"]) == 0
    stage = RuleStage.load(out.parent.parent, "pack")
    whoami, vss = stage.by_id[WHOAMI_ID], stage.by_id["00000000-0000-0000-0000-000000000002"]
    assert (whoami.level, whoami.alerts, vss.level, vss.alerts) == ("high", False, "critical", True)
    events, errors = stage.annotate([sysmon(Image="C:\\w\\whoami.exe"), sysmon(CommandLine="vssadmin delete x"),
                                     sysmon(Image="C:\\w\\whoami.exe", CommandLine="vssadmin delete x")])
    assert not errors and [len(e.rule_hits) for e in events] == [1, 1, 2]
    items: list[tuple[Event, InputRecord]] = [(e, InputRecord(EventKind.EDR, b"", None, "events.edr", 0, 0))
                                              for e in events]
    assert rule_alerts(stage, items) == {1: "Critical", 2: "Critical"}  # row 0 fired, alerts on nothing


@pytest.mark.parametrize(("entry", "problem"), [
    ({"id": "11111111-0000-0000-0000-000000000000", "title": "Whoami", "reason": "r"}, "no rule"),
    ({"id": WHOAMI_ID, "title": "Renamed", "reason": "r"}, "is titled 'Whoami'"),
    ({"id": WHOAMI_ID, "title": "Whoami"}, "missing reason"),
])
def test_a_stale_or_incomplete_tuning_refuses_the_pack(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       entry: dict[str, str], problem: str) -> None:
    code, out = _package(tmp_path, _tuning(tmp_path / "t.yml", entry))
    err = capsys.readouterr().err
    assert code == 1 and problem in err and "t.yml: entry 1" in err
    assert not (out / "pack.json").exists()


def test_tuning_file_format_problems(tmp_path: Path) -> None:
    path = tmp_path / "t.yml"
    path.write_text("feature_only: {id: x}\n")
    assert read_tuning(path)[1] == [f"{path}: expected a mapping with a 'feature_only' list"]
    _, problems = apply_tuning([], [Tuned("a", "A", "r"), Tuned("a", "A", "r")], path)
    assert problems == [f"{path}: entry 1: no rule a in the pack", f"{path}: entry 2: no rule a in the pack"]


def test_shipped_pack_tuning_changes_only_which_rules_alert() -> None:
    """The shipped pack is pack 1 with its tuning (and, from pack 3, its risk policy): the same
    rules, levels and IR (so the same hits and the same model features); the tuned rules, each
    named with its reason, alert on nothing."""
    old, new = read_pack(SHIPPED.parent / "1"), read_pack(SHIPPED)
    tuned = {t["id"] for t in new.manifest["tuning"]}
    assert tuned and all(t["reason"] for t in new.manifest["tuning"])
    assert [(r.id, r.level) for r in old.rules] == [(r.id, r.level) for r in new.rules]
    assert (old.atoms, old.conditions) == (new.atoms, new.conditions)
    assert {r.id for r in new.rules if not r.alerts} == tuned
    assert all(r.level in ("high", "critical") for r in new.rules if r.id in tuned)
    assert list(RuleEngine.load(SHIPPED).rules) == new.rules
