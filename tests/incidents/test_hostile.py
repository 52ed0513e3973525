"""Hostile findings through the whole core: whatever a field holds, a finding becomes a
digest or is refused as unattributed, and the digest correlates and renders without error
(the router and the correlator must never crash-loop on one record)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from scorer.incidents import (
    Correlator,
    LinkTable,
    Unattributed,
    decode_member,
    digest,
    encode,
    encode_incident,
    incident_finding,
)
from tests.incidents.findings import finding
from tests.support.strategies import FUZZ, JSON_VALUES, TRIED

BASES = [finding("edr", 1_700_000_000.5, host="ws1", src_ip="10.0.0.5", user="alice", tactics=("execution",),
                 rule="r1", techniques=("T1059",), layout=layout) for layout in ("1.3", "1.8")]
BASES += [finding("netflow", 1_700_000_001, src_ip="10.0.0.5", dst_ip="10.0.0.9", layout=layout)
          for layout in ("1.3", "1.8")]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def hostile_finding(draw: st.DrawFn) -> Any:
    base = copy.deepcopy(draw(st.sampled_from(BASES)))
    paths = _paths(base)
    for _ in range(draw(st.integers(1, 6))):
        path = draw(st.sampled_from(paths))
        target = base
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = draw(JSON_VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed the path
    return base


@FUZZ
@given(hostile_finding())
def test_any_finding_digests_correlates_and_renders_or_is_unattributed(f: Any) -> None:
    TRIED["incident digest"] += 1
    try:
        member = digest(f, topic="alerts.edr", partition=0, offset=1)
    except Unattributed:
        return
    assert decode_member(encode(member)) == member  # the keyed topic's record round-trips
    links, corr = LinkTable(), Correlator()
    links.learn(member)
    corr.add(links.resolve(member), offset=1)
    for e in corr.flush() + corr.close_all():
        encode_incident(incident_finding(e.activity, e.state))
