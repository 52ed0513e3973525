"""The rules stage in training: a Sigma regression event never sees its own rule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from models.edr_rules import TrainingRules, own_rules
from scorer.captures import LabeledEvent
from scorer.events.structs import EndpointEvent, EventKind
from scorer.lifecycle.rulepacks import pack_checksum
from tests.support.paths import DATA_DIR

CASE = DATA_DIR / "edr/sigma-regression/rules/windows/process_creation"


@pytest.mark.data
def test_own_rules_are_the_case_rule_and_its_related_rules() -> None:
    folder = next(p.parent for p in sorted(CASE.rglob("rule.yml")) if "related:" in p.read_text())
    ids = own_rules(folder)
    assert len(ids) >= 2
    assert next(folder.glob("*.json")).stem in ids  # the event file is named by its rule id


def test_checksum_follows_content(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    first = pack_checksum(tmp_path)
    (tmp_path / "a").write_text("y")
    assert pack_checksum(tmp_path) != first


@dataclass(frozen=True)
class Meta:
    id: str
    level: str = "high"


class Hits:
    def __init__(self, hits: list[tuple[int, ...]], errors: dict[int, object]) -> None:
        self.hits, self.errors = hits, errors


class FakeEngine:
    """Rules "own" and "other" fire on every event; the event at index 2 makes a rule raise."""

    rules = (Meta("own"), Meta("other"))

    def evaluate(self, events: list[EndpointEvent]) -> Hits:
        return Hits([(0, 1)] * len(events), {2: "boom"} if len(events) > 2 else {})


def test_own_rule_removed_and_failing_events_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("scorer.rules.annotate")
    case = tmp_path / "sigma-regression" / "rules" / "x"
    case.mkdir(parents=True)
    (case / "info.yml").write_text("rule_metadata:\n  - id: own\n")
    items = [LabeledEvent(EventKind.EDR, EndpointEvent(ts=i, host="h", event_code=1), "c", i) for i in range(4)]
    rules = TrainingRules(FakeEngine(), tmp_path, "sum", "feat")
    out = rules(case / "own.json", items)
    assert [i.line for i in out] == [0, 1, 3] and rules.failed == 1
    assert [getattr(i.event, "rule_hits", None) for i in out] == [("other",)] * 3 and rules.own_removed == 3
    otrf = rules(tmp_path / "otrf" / "c.zip", items[:2])
    assert [getattr(i.event, "rule_hits", None) for i in otrf] == [("own", "other")] * 2
    # The cache key follows what the features read of the pack, not the whole pack's checksum.
    assert rules.salt.startswith("rules-features:feat:") and "sum" not in rules.salt


def test_training_reads_the_packs_risk_policy_and_keys_rows_by_its_features() -> None:
    """Pack 3 (the risk policy added to pack 2) gives the same rows as pack 2: the cache key
    reads the pack's features, not its policy; the policy is what training counts."""
    from tests.rules.test_risk import FORMER
    from tests.support.paths import RULE_REPOSITORY

    two, three = (TrainingRules.load(RULE_REPOSITORY / "sigma_windows" / v) for v in ("2", "3"))
    assert two.risk is None and three.risk == FORMER
    assert two.salt == three.salt and two.checksum != three.checksum
