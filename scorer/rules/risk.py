"""Risk-based alerting: the rules that do not alert alone, added up per host, alert together.

Sigma rules of level medium and low describe behaviour that is suspicious in company and
ordinary alone (a replication request, a remote service opened, a group enumerated): one
such hit is no alert, and raising one on each would spend the alert budget on background.
SOCs count them instead (Splunk's risk-based alerting, Elastic's building-block rules):
every *distinct* rule that fired on a host within a window adds its level's points to the
host's risk, and the host alerts once when its risk reaches a threshold. Distinct rules, not
hits: a rule that fires on every backup run adds its points once however often it fires,
while an intrusion walks through several techniques and so several rules. A host that
alerted stays quiet for one window, so a noisy host costs one alert per window, not one per
event.

:class:`HostRisk` keeps that state per host (bounded: the least recently seen hosts are
forgotten first) and marks, per event of a micro-batch, whether it tipped its host over.
Only events with a rule hit (or a model score over the policy's floor) touch the state, so
the per-event loop runs over the few percent of events a rule fired on. The threshold and
points are chosen on the development half of the OTRF groups (models/edr_risk.py) and ship
as :data:`SHIPPED`, which the decide step applies through :func:`with_risk` (code, not yet
part of the rule pack: docs/rules.md, "Risk-based alerting").
"""

from __future__ import annotations

import contextlib
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

MODEL = "model"  # the pseudo-rule a model score over the floor counts as


@dataclass(frozen=True)
class RiskPolicy:
    """How rule hits add up to a host alert (see the module docstring)."""

    threshold: float  # a host alerts when the points of its distinct rules in the window reach this
    window_s: float = 3600.0  # how long a rule's hit counts for its host, in event time
    # Points per distinct rule of each level within the window; levels not named add nothing.
    points: Mapping[str, float] = field(default_factory=lambda: {"low": 1.0, "medium": 2.0, "high": 3.0,
                                                                 "critical": 3.0})
    model_points: float = 0.0  # a model score of at least model_floor counts as one more rule
    model_floor: float = 1.0

    def __post_init__(self) -> None:
        if not self.threshold > 0 or not self.window_s > 0:
            raise ValueError(f"risk policy: threshold and window must be positive ({self.threshold}, {self.window_s})")
        if any(p < 0 for p in self.points.values()) or self.model_points < 0:
            raise ValueError("risk policy: points must not be negative")


@dataclass
class _Host:
    seen: dict[str, tuple[float, float]] = field(default_factory=dict)  # rule -> (last hit time, points)
    alerted: float = -np.inf  # event time of the host's last risk alert


class HostRisk:
    """Per-host risk over a sliding window of event time.

    ``levels``: rule id -> Sigma level (the pack's rules); ``max_hosts`` bounds the state."""

    def __init__(self, policy: RiskPolicy, levels: Mapping[str, str], max_hosts: int = 100_000) -> None:
        self.policy = policy
        self._points = {rule: policy.points.get(level, 0.0) for rule, level in levels.items()}
        self._hosts: OrderedDict[str, _Host] = OrderedDict()
        self.max_hosts = max_hosts

    def __len__(self) -> int:
        return len(self._hosts)

    def observe(self, hosts: Sequence[str], ts: npt.NDArray[np.float64], hits: Sequence[Sequence[str]],
                scores: npt.NDArray[np.float64] | None = None) -> npt.NDArray[np.bool_]:
        """Per event, in batch order: did it bring its host's risk to the threshold (a risk alert)?"""
        p = self.policy
        alert = np.zeros(len(hosts), bool)
        model = np.zeros(len(hosts), bool) if scores is None or p.model_points <= 0 else scores >= p.model_floor
        for i in range(len(hosts)):
            fired = [(r, pts) for r in hits[i] if (pts := self._points.get(r, 0.0)) > 0]
            if model[i]:
                fired.append((MODEL, p.model_points))
            if fired:
                alert[i] = self._add(hosts[i], float(ts[i]), fired)
        return alert

    def _add(self, host: str, t: float, fired: list[tuple[str, float]]) -> bool:
        state = self._hosts.pop(host, None) or _Host()
        self._hosts[host] = state  # most recently seen last
        if len(self._hosts) > self.max_hosts:
            self._hosts.popitem(last=False)
        for rule, pts in fired:
            last = state.seen.get(rule, (t, pts))[0]
            state.seen[rule] = (max(last, t), pts)
        horizon = t - self.policy.window_s
        state.seen = {r: v for r, v in state.seen.items() if v[0] >= horizon}
        if t - state.alerted < self.policy.window_s:
            return False
        if sum(pts for _, pts in state.seen.values()) >= self.policy.threshold:
            state.alerted = t
            return True
        return False


# The shipped policy, chosen by ``python -m models.edr_risk`` on the development half of the
# OTRF groups (docs/rules.md, "Risk-based alerting"): two distinct medium rules (or a
# high/critical one, or a medium rule and a model score of at least 0.05) on one host within
# 30 minutes. The model floor belongs to the EDR model it was chosen with (edr_classifier 1,
# feature set v3), whose card threshold counts these alerts in its budget.
SHIPPED = RiskPolicy(threshold=1.5, window_s=1800.0,
                     points={"low": 0.5, "medium": 1.0, "high": 2.0, "critical": 2.0},
                     model_points=1.0, model_floor=0.05)

RISK_SEVERITY = "Medium"  # a host's risk alert: more than one suspicious hit, none decisive alone
_BY_STAGE: dict[int, HostRisk] = {}


def stage_risk(stage: Any, policy: RiskPolicy = SHIPPED) -> HostRisk:
    """The per-host risk state of a loaded rule pack (``scorer.rules.annotate.RuleStage``):
    one per pack in the process, so a promoted or rolled-back pack starts from no risk."""
    risk = _BY_STAGE.get(id(stage))
    if risk is None:
        risk = _BY_STAGE[id(stage)] = HostRisk(policy, {i: r.level for i, r in stage.by_id.items()})
        # Forgotten with its pack (RuleStage takes weak references); an object that takes none
        # keeps its state for the life of the process.
        with contextlib.suppress(TypeError):
            weakref.finalize(stage, _BY_STAGE.pop, id(stage), None)
    return risk


def with_risk(stage: Any, items: Sequence[tuple[Any, Any]], scores: npt.NDArray[Any],
              forced: dict[int, str]) -> dict[int, str]:
    """The service's hook (scorer/pipeline/decide.py): ``forced`` (rows alerting on their
    rules, row -> severity) plus the rows of this batch that brought their host's risk to the
    shipped policy's threshold. Rows are read in batch order, as events arrive."""
    if stage is None or not items:
        return forced
    # Only events with a rule hit or a score over the floor can move a host's risk: the
    # per-event work on the rest is one attribute read.
    hits = [getattr(ev, "rule_hits", ()) for ev, _ in items]
    p = stage_risk(stage).policy
    touch = np.fromiter((bool(h) for h in hits), bool, len(hits))
    if p.model_points > 0:
        touch |= np.asarray(scores) >= p.model_floor
    rows = np.flatnonzero(touch).tolist()
    if not rows:
        return forced
    events = [items[r][0] for r in rows]
    tipped = stage_risk(stage).observe(
        [str(getattr(ev, "host", "")) for ev in events],
        np.array([float(getattr(ev, "ts", 0.0)) for ev in events], np.float64),
        [tuple(hits[r]) for r in rows],
        np.asarray(scores, np.float64)[rows],
    )
    out = dict(forced)
    for k in np.flatnonzero(tipped).tolist():
        out.setdefault(rows[k], RISK_SEVERITY)
    return out
