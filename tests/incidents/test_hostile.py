"""Hostile findings through the whole core: whatever a field holds, a finding becomes a
digest or is refused as unattributed, and the digest correlates and renders without error
(the router and the correlator must never crash-loop on one record)."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from scorer.incidents import (
    Correlator,
    Finding,
    LinkTable,
    Unattributed,
    decode_finding,
    decode_member,
    digest,
    encode,
    encode_incident,
    incident_finding,
)
from scorer.incidents.finding_view import _coerce, _shape
from tests.incidents.findings import finding
from tests.support.strategies import FUZZ, JSON_VALUES, SCALARS, TRIED

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


# Leaves the digest takes (names, addresses, ids, times) besides any JSON value.
_LEAVES = st.one_of(SCALARS, st.integers(0, 2**41), st.sampled_from(
    ["ws1", "WS2.corp", "10.0.0.5", "10.0.0.9", "true", "false", "edr", "netflow", "TA0002", "t1059.001",
     "Credential Access", "alice", "r1"]))


def _view_shaped(cls: Any, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the keys the digest reads (``entities.Finding``), nested as the typed view
    expects (an object or null where it has an object, a list of objects where a list), any
    leaf: what the typed decoder takes without falling back to plain JSON."""
    def value(how: str, sub: Any) -> st.SearchStrategy[Any]:
        if how == "leaf":
            return st.one_of(_LEAVES, JSON_VALUES)
        inner = _view_shaped(sub, depth + 1) if depth < 3 else st.just({})
        return st.none() | (inner if how == "object" else st.lists(inner, max_size=3))

    return st.fixed_dictionaries({}, optional={name: value(how, sub) for name, how, sub in _shape(cls)})


def _overlay(base: Any, extra: Any) -> Any:
    """``extra``'s values over a copy of ``base``, objects merged key by key."""
    if not (isinstance(base, dict) and isinstance(extra, dict)):
        return extra
    return {**base, **{k: _overlay(base.get(k), v) for k, v in extra.items()}}


def _digest_or_error(read: Any) -> Any:
    try:
        return read()
    except (Unattributed, msgspec.DecodeError) as exc:
        return type(exc), str(exc)


@FUZZ
@given(st.one_of(hostile_finding(), _view_shaped(Finding),
                 st.builds(_overlay, st.sampled_from(BASES), _view_shaped(Finding))))
def test_typed_decode_digests_as_the_tolerant_path(f: Any) -> None:
    """The router decodes a finding's bytes straight into the typed view; a value of another
    type than the view expects sends it through plain JSON and a coercion. Both must give
    the same digest (or the same refusal) for every finding: findings of the view's shape
    (taken by the typed decoder) and hostile ones (mostly not)."""
    TRIED["incident typed decode"] += 1
    raw = msgspec.json.encode(f)
    typed = _digest_or_error(lambda: digest(decode_finding(raw), topic="alerts.edr", partition=0, offset=1))
    tolerant = _digest_or_error(lambda: digest(_coerce(msgspec.json.decode(raw), Finding), topic="alerts.edr",
                                               partition=0, offset=1))
    assert typed == tolerant
    TRIED["incident typed decode, digested"] += not isinstance(typed, tuple)
