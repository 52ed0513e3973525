from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from scorer.events.structs import EndpointEvent
from scorer.rules.risk import (
    RISK_SEVERITY,
    HostRisk,
    RiskPolicy,
    manifest_risk,
    read_risk,
    stage_risk,
    with_risk,
    write_risk,
)

LEVELS = {"m1": "medium", "m2": "medium", "m3": "medium", "l1": "low", "i1": "informational"}
POLICY = RiskPolicy(threshold=3.0, window_s=60.0, points={"low": 1.0, "medium": 2.0})
# The policy the service applied as code before it moved into the rule pack (sigma_windows/3).
FORMER = RiskPolicy(threshold=1.5, window_s=1800.0, points={"low": 0.5, "medium": 1.0, "high": 2.0, "critical": 2.0},
                    model_points=1.0, model_floor=0.05)


def observe(risk: HostRisk, events: list[tuple[str, float, tuple[str, ...]]]) -> list[bool]:
    hosts, ts, hits = zip(*events, strict=True)
    out: list[bool] = risk.observe(list(hosts), np.array(ts, np.float64), list(hits)).tolist()
    return out


def test_distinct_rules_add_up_and_a_repeated_rule_counts_once() -> None:
    risk = HostRisk(POLICY, LEVELS)
    # m1 three times is 2 points, not 6; l1 then brings the host to 3.
    assert observe(risk, [("a", 0, ("m1",)), ("a", 1, ("m1",)), ("a", 2, ("m1",)), ("a", 3, ("l1",))]) == [
        False, False, False, True]


def test_hosts_are_separate_and_levels_without_points_add_nothing() -> None:
    risk = HostRisk(POLICY, LEVELS)
    assert observe(risk, [("a", 0, ("m1",)), ("b", 1, ("l1",)), ("b", 2, ("i1",)), ("a", 3, ("i1", "unknown"))]) == [
        False, False, False, False]
    assert len(risk) == 2


def test_hits_older_than_the_window_expire() -> None:
    risk = HostRisk(POLICY, LEVELS)
    assert observe(risk, [("a", 0, ("m1",)), ("a", 61, ("l1",))]) == [False, False]
    assert observe(risk, [("a", 62, ("m2",))]) == [True]  # l1 (61) and m2 (62) are within 60 s


def test_a_host_alerts_once_per_window() -> None:
    risk = HostRisk(POLICY, LEVELS)
    out = observe(risk, [("a", 0, ("m1", "m2")), ("a", 10, ("m3",)), ("a", 59, ("l1",)), ("a", 70, ("m1", "m2"))])
    assert out == [True, False, False, True]


def test_model_score_over_the_floor_counts_as_a_rule() -> None:
    policy = RiskPolicy(threshold=3.0, window_s=60.0, points={"medium": 2.0}, model_points=1.0, model_floor=0.5)
    risk = HostRisk(policy, LEVELS)
    out = risk.observe(["a", "a", "b", "b"], np.array([0.0, 1, 2, 3]), [("m1",), (), (), ("m1",)],
                       np.array([0.1, 0.9, 0.4, 0.3]))
    assert out.tolist() == [False, True, False, False]


def test_state_is_bounded_least_recently_seen_first() -> None:
    risk = HostRisk(POLICY, LEVELS, max_hosts=2)
    observe(risk, [("a", 0, ("m1",)), ("b", 1, ("m1",)), ("c", 2, ("m1",))])
    assert len(risk) == 2
    # a was forgotten when c came, so its m1 no longer counts; c (kept) still has its m1.
    assert observe(risk, [("a", 3, ("l1",)), ("c", 4, ("l1",))]) == [False, True]


@pytest.mark.parametrize(("kw", "says"), [
    ({"threshold": 0.0}, "threshold and window must be positive"),
    ({"threshold": 1.0, "window_s": 0.0}, "threshold and window must be positive"),
    ({"threshold": 1.0, "points": {"medium": -1.0}}, "points must not be negative"),
    ({"threshold": 1.0, "points": {"hihg": 1.0}}, "unknown level(s) 'hihg'"),
    ({"threshold": float("nan")}, "threshold must be a finite number"),
    ({"threshold": "2"}, "threshold must be a finite number"),
    ({"threshold": 1.0, "points": {"medium": True}}, "points.medium must be a finite number"),
    ({"threshold": 1.0, "model_floor": 1.5}, "model_floor is a score"),
    ({"threshold": 1.0, "points": {"informational": 0.0}}, "could never alert"),
])
def test_bad_policy_is_refused(kw: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match="risk policy") as refused:
        RiskPolicy(**kw)  # type: ignore[arg-type]
    assert says in str(refused.value)


def test_policy_round_trips_through_its_manifest_and_file_forms(tmp_path: Path) -> None:
    assert RiskPolicy.from_json(FORMER.to_json()) == FORMER
    assert manifest_risk({"risk": FORMER.to_json()}) == FORMER and manifest_risk({"name": "p"}) is None
    path = tmp_path / "risk.yml"
    write_risk(path, FORMER, "chosen by a test\n\nsecond paragraph")
    assert path.read_text().startswith("# chosen by a test\n#\n# second paragraph\n")
    assert read_risk(path) == (FORMER, [])


@pytest.mark.parametrize(("data", "says"), [
    ([1.5], "expected a mapping, not list"),
    ({"window_s": 60, "points": {"medium": 1}}, "missing threshold"),
    ({"threshold": 1, "window_s": 60, "points": {}}, "points must map Sigma levels to points"),
    ({"threshold": 1, "window_s": 60, "points": {"medium": 1}, "treshold": 2}, "unknown field(s) treshold"),
])
def test_malformed_policy_forms_are_refused_with_the_reason(data: Any, says: str) -> None:
    with pytest.raises(ValueError, match="risk policy") as refused:
        RiskPolicy.from_json(data)
    assert says in str(refused.value)
    with pytest.raises(ValueError, match=r"^pack\.json: risk policy"):
        manifest_risk({"risk": data})


def test_unreadable_policy_file_is_reported_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "risk.yml"
    path.write_text("threshold: [unclosed\n")
    policy, problems = read_risk(path)
    assert policy is None and len(problems) == 1 and problems[0].startswith(f"{path}: unreadable: ")
    path.write_text("threshold: 0\nwindow_s: 60\npoints: {medium: 1}\n")
    assert read_risk(path) == (None, [f"{path}: risk policy: threshold and window must be positive (0, 60)"])


@dataclass
class Stage:
    """What the hook reads of a loaded pack (scorer.rules.annotate.RuleStage): rules by id and
    the pack's risk policy."""

    by_id: dict[str, SimpleNamespace]
    risk: RiskPolicy | None


def event(host: str, ts: float, *hits: str) -> EndpointEvent:
    return EndpointEvent(ts=ts, host=host, event_code=1, rule_hits=hits)


def test_hook_adds_risk_rows_keeps_rule_alerts_and_state_across_batches() -> None:
    stage = Stage({k: SimpleNamespace(level=v) for k, v in LEVELS.items()}, FORMER)
    first = [(event("a", 0, "m1"), None), (event("b", 1), None)]
    assert with_risk(stage, first, np.zeros(2, np.float32), {1: "High"}) == {1: "High"}
    second = [(event("a", 5, "l1"), None), (event("c", 6), None)]
    # a: m1 (1, from the first batch) + l1 (0.5) = 1.5; c: a model score over the floor only (1).
    assert with_risk(stage, second, np.array([0.0, 0.9], np.float32), {}) == {0: RISK_SEVERITY}
    # A row a rule already alerts on keeps the rule's severity.
    third = [(event("d", 7, "m1", "m2"), None)]
    assert with_risk(stage, third, np.zeros(1, np.float32), {0: "Critical"}) == {0: "Critical"}
    state = stage_risk(stage)
    assert state is not None and state.policy is FORMER and len(state) == 3  # b was never touched
    assert with_risk(None, third, np.zeros(1, np.float32), {}) == {}


def test_a_pack_without_a_policy_raises_no_risk_alerts() -> None:
    stage = Stage({k: SimpleNamespace(level=v) for k, v in LEVELS.items()}, None)
    # Two medium rules and a model score on one host: a risk alert under any policy above.
    items = [(event("a", 0, "m1"), None), (event("a", 1, "m2", "m3"), None)]
    assert with_risk(stage, items, np.array([0.9, 0.9], np.float32), {1: "High"}) == {1: "High"}
    assert stage_risk(stage) is None
