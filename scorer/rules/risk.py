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
the per-event loop runs over the few percent of events a rule fired on.

The policy is part of the rule pack: the manifest's ``risk`` key (``pack.json``, checksummed
like every file of the pack, checked by ``scorer rules validate`` and by every scorer before it
installs the pack), written by ``scorer rules package --risk FILE`` from a YAML file of the
same fields (:func:`read_risk`). Detection engineers therefore version, shadow, promote and
roll back the policy with the rules it adds up. A pack without the key raises no risk alerts:
only the rules that alert alone and the model do. The threshold and points of the shipped
pack were chosen on the development half of the OTRF groups (models/edr_risk.py).
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from scorer.rules.model import LEVELS

MODEL = "model"  # the pseudo-rule a model score over the floor counts as
MANIFEST_KEY = "risk"  # the policy's key in a rule pack's pack.json
_FIRED_CACHE = 4096  # distinct sets of hits remembered per pack


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
        numbers = {"threshold": self.threshold, "window_s": self.window_s, "model_points": self.model_points,
                   "model_floor": self.model_floor, **{f"points.{k}": v for k, v in self.points.items()}}
        for name, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"risk policy: {name} must be a finite number, not {value!r}")
        if not self.threshold > 0 or not self.window_s > 0:
            raise ValueError(f"risk policy: threshold and window must be positive ({self.threshold}, {self.window_s})")
        if any(p < 0 for p in self.points.values()) or self.model_points < 0:
            raise ValueError("risk policy: points must not be negative")
        unknown = sorted(set(self.points) - set(LEVELS))
        if unknown:
            raise ValueError(f"risk policy: points for unknown level(s) {', '.join(map(repr, unknown))} "
                             f"(Sigma levels: {', '.join(LEVELS)})")
        if not 0.0 <= self.model_floor <= 1.0:
            raise ValueError(f"risk policy: model_floor is a score, between 0 and 1 (not {self.model_floor})")
        if not any(p > 0 for p in self.points.values()) and self.model_points <= 0:
            raise ValueError("risk policy: no level and no model score adds points: it could never alert")

    def to_json(self) -> dict[str, Any]:
        """The manifest form (:meth:`from_json` reads it back)."""
        return {"threshold": self.threshold, "window_s": self.window_s, "points": dict(self.points),
                "model_points": self.model_points, "model_floor": self.model_floor}

    @classmethod
    def from_json(cls, data: Any) -> RiskPolicy:
        """A policy from its manifest (or YAML) form; :class:`ValueError` naming the problem
        for a missing or unknown field or a value out of range."""
        if not isinstance(data, Mapping):
            raise ValueError(f"risk policy: expected a mapping, not {type(data).__name__}")
        fields = {"threshold", "window_s", "points", "model_points", "model_floor"}
        unknown = sorted(set(map(str, data)) - fields)
        if unknown:
            raise ValueError(f"risk policy: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(fields))})")
        missing = [k for k in ("threshold", "window_s", "points") if k not in data]
        if missing:
            raise ValueError(f"risk policy: missing {', '.join(missing)}")
        points = data["points"]
        if not isinstance(points, Mapping) or not points:
            raise ValueError("risk policy: points must map Sigma levels to points")
        return cls(threshold=data["threshold"], window_s=data["window_s"],
                   points={str(k): v for k, v in points.items()},
                   model_points=data.get("model_points", 0.0), model_floor=data.get("model_floor", 1.0))


def read_risk(path: Path) -> tuple[RiskPolicy | None, list[str]]:
    """The risk policy in the YAML file at ``path`` (the fields of :meth:`RiskPolicy.to_json`;
    comments say how it was chosen) and its problems (``path: why``)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return RiskPolicy.from_json(data), []
    except (OSError, yaml.YAMLError) as exc:
        return None, [f"{path}: unreadable: {type(exc).__name__}: {exc}"]
    except (ValueError, TypeError) as exc:
        return None, [f"{path}: {exc}"]


def manifest_risk(manifest: Mapping[str, Any]) -> RiskPolicy | None:
    """The policy a pack's manifest carries (None: the pack has none, no risk alerts);
    :class:`ValueError` naming the manifest's problem."""
    if MANIFEST_KEY not in manifest:
        return None
    try:
        return RiskPolicy.from_json(manifest[MANIFEST_KEY])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"pack.json: {exc}") from None


def write_risk(path: Path, policy: RiskPolicy, header: str) -> None:
    """Write a risk policy file (``header``: comment lines saying how it was chosen)."""
    body = yaml.safe_dump(policy.to_json(), sort_keys=False, width=100)
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    path.write_text(comments + body, encoding="utf-8")


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
        # A set of hits -> the rules of it that add points, and theirs (a pack's combinations are few).
        self._fired: dict[tuple[str, ...], tuple[tuple[str, float], ...]] = {}

    def __len__(self) -> int:
        return len(self._hosts)

    def observe(self, hosts: Sequence[str], ts: npt.NDArray[np.float64], hits: Sequence[Sequence[str]],
                scores: npt.NDArray[np.float64] | None = None) -> npt.NDArray[np.bool_]:
        """Per event, in batch order: did it bring its host's risk to the threshold (a risk alert)?"""
        p = self.policy
        model = None if scores is None or p.model_points <= 0 else (scores >= p.model_floor).tolist()
        alert = np.zeros(len(hosts), bool)
        alert[self.tipped(hosts, np.asarray(ts, np.float64).tolist(), hits, model)] = True
        return alert

    def tipped(self, hosts: Sequence[str], ts: Sequence[float], hits: Sequence[Sequence[str]],
               model: Sequence[bool] | None) -> list[int]:
        """:meth:`observe` on Python lists (``model``: the events whose score counts as a rule, None
        for none): the positions of the events that tipped their host. Per event it is a few dict
        reads: it runs on every EDR event a rule fired on, an attack-heavy stream's alerts."""
        fired_of, points, hosts_state, max_hosts = self._fired, self._points, self._hosts, self.max_hosts
        p = self.policy
        scored, window, threshold = (MODEL, p.model_points), p.window_s, p.threshold
        out: list[int] = []
        for i, t in enumerate(ts):
            h = hits[i]
            fired = fired_of.get(h) if type(h) is tuple else None
            if fired is None:
                fired = tuple((r, pts) for r in h if (pts := points.get(r, 0.0)) > 0)
                if type(h) is tuple and len(fired_of) < _FIRED_CACHE:
                    fired_of[h] = fired
            if model is not None and model[i]:
                fired += (scored,)
            if not fired:
                continue
            # The host's state, most recently seen last; the least recently seen forgotten first.
            host = hosts[i]
            state = hosts_state.get(host)
            if state is None:
                state = hosts_state[host] = _Host()
                if len(hosts_state) > max_hosts:
                    hosts_state.popitem(last=False)
            else:
                hosts_state.move_to_end(host)
            seen = state.seen
            for rule, pts in fired:
                old = seen.get(rule)
                # the latest hit's time (a NaN time never replaces a number: max()'s rule)
                seen[rule] = (t, pts) if old is None or t > old[0] else (old[0], pts)
            horizon = t - window
            for last, _ in seen.values():
                if not last >= horizon:  # some hit left the window (or a NaN time): keep the rest, in order
                    state.seen = seen = {r: v for r, v in seen.items() if v[0] >= horizon}
                    break
            # Quiet for a window after its last alert; else the points of its distinct rules, in order.
            if not t - state.alerted < window and sum([v[1] for v in seen.values()]) >= threshold:
                state.alerted = t
                out.append(i)
        return out


RISK_SEVERITY = "Medium"  # a host's risk alert: more than one suspicious hit, none decisive alone
_BY_STAGE: dict[int, HostRisk] = {}


def stage_risk(stage: Any) -> HostRisk | None:
    """The per-host risk state of a loaded rule pack (``scorer.rules.annotate.RuleStage``)
    under the pack's own policy (None: the pack has no policy): one per pack in the process,
    so a promoted or rolled-back pack starts from no risk."""
    policy: RiskPolicy | None = getattr(stage, "risk", None)
    if policy is None:
        return None
    risk = _BY_STAGE.get(id(stage))
    if risk is None:
        risk = _BY_STAGE[id(stage)] = HostRisk(policy, {i: r.level for i, r in stage.by_id.items()})
        # Forgotten with its pack (RuleStage takes weak references); an object that takes none
        # keeps its state for the life of the process.
        with contextlib.suppress(TypeError):
            weakref.finalize(stage, _BY_STAGE.pop, id(stage), None)
    return risk


def with_risk(stage: Any, items: Sequence[tuple[Any, Any]], scores: npt.NDArray[Any],
              forced: dict[int, str], hits: Sequence[Sequence[str]] | None = None) -> dict[int, str]:
    """The service's hook (scorer/pipeline/decide.py): ``forced`` (rows alerting on their
    rules, row -> severity) plus the rows of this batch that brought their host's risk to the
    threshold of the pack's policy (none when the pack carries no policy). Rows are read in
    batch order, as events arrive. ``hits``: each row's rule hits, when the caller has them."""
    if stage is None or not items:
        return forced
    risk = stage_risk(stage)
    if risk is None:
        return forced
    # Only events with a rule hit or a score over the floor can move a host's risk: the
    # per-event work on the rest is one attribute read.
    if hits is None:
        hits = [getattr(ev, "rule_hits", ()) for ev, _ in items]
    p = risk.policy
    rows = [i for i, h in enumerate(hits) if h]  # few rows: a list, not a bool array per batch
    model = None
    if p.model_points > 0:
        # A score counts as a rule when it reaches the floor, compared in float64 (observe()'s
        # comparison); on Python floats, not by array calls that cost more than a 50-record batch.
        listed = np.asarray(scores, np.float64).tolist()
        floor = p.model_floor
        scored = [i for i, v in enumerate(listed) if v >= floor]
        rows = sorted(set(rows).union(scored)) if rows else scored
        model = [listed[r] >= floor for r in rows]
    if not rows:
        return forced
    events = [items[r][0] for r in rows]
    tipped = risk.tipped([str(getattr(ev, "host", "")) for ev in events],
                         [float(getattr(ev, "ts", 0.0)) for ev in events], [tuple(hits[r]) for r in rows], model)
    if not tipped:
        return forced
    out = dict(forced)
    for k in tipped:
        out.setdefault(rows[k], RISK_SEVERITY)
    return out
