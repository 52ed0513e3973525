"""Rule-hit block (v3): counts by level, kind and tactic from the pack's metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scorer.events.structs import EndpointEvent
from scorer.features.rules import NAMES, RuleFeatures, tactic_name


@dataclass(frozen=True)
class Meta:  # the fields of scorer.rules.RuleMeta this block reads
    id: str
    level: str
    kind: str = "detection"
    tactics: tuple[str, ...] = ()
    title: str = ""
    techniques: tuple[str, ...] = field(default=())


RULES = (Meta("a", "high", tactics=("credential_access",)),
         Meta("b", "low", "hunting", ("discovery", "Lateral Movement")),
         Meta("c", "critical", "emerging", ("attack.credential-access",)),
         Meta("d", "medium", "detection", ("not-a-tactic",)),
         Meta("e", "informational"))


def ev(*hits: str) -> EndpointEvent:
    return EndpointEvent(ts=1.0, host="h", event_code=1, rule_hits=hits)


def row(features: RuleFeatures, event: EndpointEvent) -> dict[str, float]:
    c = features.columns([event])
    return {n: float(c[n][0]) for n in NAMES if c[n][0] != 0}


def test_counts() -> None:
    f = RuleFeatures({r.id: r for r in RULES})
    assert row(f, ev()) == {}
    assert row(f, ev("a", "c")) == {"rule_hits": 2, "rule_max_level": 5, "rule_high": 1, "rule_critical": 1,
                                    "rule_detection": 1, "rule_emerging": 1, "rule_tactic_credential_access": 2}
    assert row(f, ev("b")) == {"rule_hits": 1, "rule_max_level": 2, "rule_low": 1, "rule_hunting": 1,
                               "rule_tactic_discovery": 1, "rule_tactic_lateral_movement": 1}
    assert row(f, ev("d", "e")) == {"rule_hits": 2, "rule_max_level": 3, "rule_medium": 1, "rule_informational": 1,
                                    "rule_detection": 2, "rule_tactic_other": 2}


def test_sources_and_unknown_ids() -> None:
    by_seq = RuleFeatures(RULES)
    assert row(by_seq, ev("a", "a")) == row(RuleFeatures({r.id: r for r in RULES}), ev("a"))
    assert row(by_seq, ev("zz", "a"))["rule_hits"] == 2 and by_seq.unmapped == 1
    empty = RuleFeatures()
    assert row(empty, ev("a")) == {"rule_hits": 1} and empty.unmapped == 1


def test_batch_equals_each_event_alone() -> None:
    f = RuleFeatures(RULES)
    events = [ev(), ev("a"), ev("b", "c"), ev(), ev("a"), ev("e", "d", "b")] * 3
    batch = f.columns(events)
    for i, e in enumerate(events):
        alone = f.columns([e])
        assert all(batch[n][i] == alone[n][0] for n in NAMES)
    assert all(c.shape == (0,) for c in f.columns([]).values())
    assert np.isfinite(np.column_stack(list(batch.values()))).all()


def test_tactic_names() -> None:
    assert {tactic_name(t) for t in ("Credential Access", "credential-access", "attack.credential_access")} == {
        "credential_access"}
