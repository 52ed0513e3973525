"""HostRisk against the policy's plain definition, on random streams: the service's loop keeps
per-set caches and skips rebuilding a host's window when nothing left it, and must decide the
very same events (hosts forgotten, NaN times, repeated rules, model scores included)."""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from scorer.events.structs import EndpointEvent
from scorer.rules.risk import MODEL, HostRisk, RiskPolicy, with_risk

LEVELS = {f"r{i}": level for i, level in enumerate(["low", "medium", "high", "critical", "informational"] * 3)}
POLICY = RiskPolicy(threshold=2.5, window_s=50.0, points={"low": 0.5, "medium": 1.0, "high": 2.0},
                    model_points=1.0, model_floor=0.3)


State = OrderedDict[str, tuple[dict[str, tuple[float, float]], list[float]]]


def reference(policy: RiskPolicy, state: State, hosts: list[str], ts: list[float], hits: list[tuple[str, ...]],
              scores: list[float], max_hosts: int) -> list[bool]:
    """The definition (the module docstring), one event at a time, nothing cached."""
    out = []
    for host, t, h, s in zip(hosts, ts, hits, scores, strict=True):
        fired = [(r, policy.points.get(LEVELS.get(r, ""), 0.0)) for r in h]
        fired = [(r, p) for r, p in fired if p > 0]
        if s >= policy.model_floor:
            fired.append((MODEL, policy.model_points))
        if not fired:
            out.append(False)
            continue
        seen, alerted = state.pop(host) if host in state else ({}, [-math.inf])
        state[host] = (seen, alerted)
        if len(state) > max_hosts:
            state.popitem(last=False)
        for rule, pts in fired:
            seen[rule] = (max(seen.get(rule, (t, pts))[0], t), pts)
        for rule in [r for r, v in seen.items() if not v[0] >= t - policy.window_s]:
            del seen[rule]
        tipped = not t - alerted[0] < policy.window_s and sum(p for _, p in seen.values()) >= policy.threshold
        if tipped:
            alerted[0] = t
        out.append(bool(tipped))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_random_streams_decide_as_the_definition(seed: int) -> None:
    rng = random.Random(seed)
    max_hosts = rng.choice([2, 5, 1000])
    risk = HostRisk(POLICY, LEVELS, max_hosts=max_hosts)
    state: State = OrderedDict()
    alerts = 0
    for _ in range(40):  # batches, the state carried between them
        n = rng.randint(0, 60)
        hosts = [rng.choice("abcdefg") for _ in range(n)]
        ts = [rng.choice([math.nan, math.inf, -math.inf]) if rng.random() < 0.05 else rng.uniform(0, 400)
              for _ in range(n)]
        if seed % 2:  # in time order, or not
            ts.sort(key=lambda t: (math.isnan(t), t))
        hits = [tuple(rng.sample([*sorted(LEVELS), "unknown"], rng.randint(0, 3))) for _ in range(n)]
        scores = [rng.random() for _ in range(n)]
        want = reference(POLICY, state, hosts, ts, hits, scores, max_hosts) if n else []
        got = risk.observe(hosts, np.array(ts, np.float64), hits, np.array(scores, np.float64)).tolist()
        assert got == want
        alerts += sum(got)
    assert alerts > 0  # the streams do reach the threshold


@dataclass
class _Stage:
    by_id: dict[str, SimpleNamespace]
    risk: RiskPolicy


def test_the_hook_counts_a_score_as_observe_does_at_a_float32_floor() -> None:
    # 0.7 rounds down to float32: a float32 score equal to it passes a float32 comparison and
    # not a float64 one; the hook counts it as observe() does (in float64).
    policy = RiskPolicy(threshold=1.5, window_s=50.0, points={"medium": 1.0}, model_points=1.0, model_floor=0.7)
    stage = _Stage({k: SimpleNamespace(level=v) for k, v in LEVELS.items()}, policy)
    state: State = OrderedDict()
    near = np.float32(0.7)
    scores = np.array([near, np.nextafter(near, np.float32(1)), np.nextafter(near, np.float32(0)), near, 0.9, 0.0],
                      np.float32)
    hits = [("r1",), (), ("r1",), (), ("r1",), ("r1",)]  # r1 is medium
    hosts = ["a", "b", "c", "d", "e", "e"]
    items = [(EndpointEvent(ts=float(i), host=h, event_code=1, rule_hits=r), None)
             for i, (h, r) in enumerate(zip(hosts, hits, strict=True))]
    want = reference(policy, state, hosts, [float(i) for i in range(6)], hits, scores.tolist(), 100)
    got = with_risk(stage, items, scores, {})
    assert sorted(got) == [i for i, w in enumerate(want) if w] == [4]
