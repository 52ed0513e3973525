"""scorer.native's decode-step helpers against their Python references: ``where`` (a batch's
records grouped by kind), ``bounded`` (the EDR/SIEM column checks' common case) and
``all_finite`` (the features step's check of every matrix), on the bundled capture's events and
on adversarial values."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scorer.native
from scorer.events.column_checks import _EMPTY, _EVENT_INTS, _all_events_good_reference
from scorer.events.columnar import where, where_reference
from scorer.events.convert import INT_LIMIT
from scorer.events.structs import EndpointEvent, EventKind, SiemAlert
from tests.support.native import use_native

_NATIVE: Any = scorer.native.built_module()
pytestmark = pytest.mark.skipif(_NATIVE is None, reason="scorer.native._native is not built")

_VALUES = st.lists(st.one_of(st.none(), st.sampled_from(list(EventKind)), st.integers(-3, 3), st.text(max_size=2)),
                   max_size=80)


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_where_equals_the_reference(values: list[Any]) -> None:
    native, reference = _NATIVE.where(values), where_reference(values)
    assert native == reference
    assert list(native) == list(reference)  # first-seen order: the batch's kinds keep it


def test_where_switches_with_scorer_native(monkeypatch: pytest.MonkeyPatch) -> None:
    values = [EventKind.EDR, None, EventKind.SIEM, EventKind.EDR]
    with monkeypatch.context() as m:
        use_native(m, "0")
        assert where(values) == {EventKind.EDR: [0, 3], None: [1], EventKind.SIEM: [2]}
    with monkeypatch.context() as m:
        use_native(m, "1")
        assert where(values) == {EventKind.EDR: [0, 3], None: [1], EventKind.SIEM: [2]}


def test_where_refuses_what_python_refuses() -> None:
    with pytest.raises(TypeError):
        _NATIVE.where([1, [2]])  # unhashable, as dict.setdefault raises
    with pytest.raises(TypeError):
        _NATIVE.where((1, 2))  # a list only


_BIG = st.sampled_from([0, 1, -1, INT_LIMIT, -INT_LIMIT, INT_LIMIT + 1, -INT_LIMIT - 1, 2**63, -(2**63), 2**80])
_TS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 0.0]))


def _edr(ts: float, code: int, pid: int | None, port: int | None, logon: int | None,
         hits: tuple[str, ...]) -> EndpointEvent:
    return EndpointEvent(ts=ts, host="h", event_code=code, process_id=pid, dst_port=port, logon_type=logon,
                         rule_hits=hits)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.builds(_edr, _TS, _BIG, st.none() | _BIG, st.none() | _BIG, st.none() | _BIG,
                          st.sampled_from([(), ("r1",)])), min_size=1, max_size=20))
def test_bounded_never_accepts_what_the_reference_refuses_edr(events: list[EndpointEvent]) -> None:
    ok = _NATIVE.bounded(events, ("ts",), _EVENT_INTS[EventKind.EDR], INT_LIMIT, _EMPTY[EventKind.EDR])
    # Exactly the values the checks bound: each finite ts, each int within INT_LIMIT, no hits.
    exact = all(math.isfinite(e.ts) and not e.rule_hits and all(
        v is None or abs(v) <= INT_LIMIT for v in (e.event_code, e.process_id, e.dst_port, e.logon_type))
        for e in events)
    assert ok is exact
    if ok:  # a sum that overflows sends the reference column by column, which accepts the same rows
        assert _all_events_good_reference(EventKind.EDR, events) or not math.isfinite(sum(e.ts for e in events))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.builds(lambda ts, sev: SiemAlert(ts=ts, host="h", rule_name="r", severity=sev), _TS,
                          st.none() | _BIG), min_size=1, max_size=20))
def test_bounded_equals_the_checks_siem(alerts: list[SiemAlert]) -> None:
    ok = _NATIVE.bounded(alerts, ("ts",), _EVENT_INTS[EventKind.SIEM], INT_LIMIT, _EMPTY[EventKind.SIEM])
    assert ok is all(math.isfinite(a.ts) and (a.severity is None or abs(a.severity) <= INT_LIMIT) for a in alerts)


def test_bounded_on_the_bundled_capture() -> None:
    from scorer.bench.loadgen import templates
    from scorer.demo import bundled_capture
    from scorer.events.structs import STRUCT_OF_KIND

    by_kind: dict[EventKind, list[Any]] = {EventKind.EDR: [], EventKind.SIEM: []}
    for kind, event in templates(bundled_capture(), tuple(by_kind)):
        if kind in by_kind:  # decoded from its canonical JSON, as the decode step holds it
            by_kind[kind].append(msgspec.json.decode(msgspec.json.encode(event), type=STRUCT_OF_KIND[kind]))
    for kind, events in by_kind.items():
        assert events
        assert _NATIVE.bounded(events, ("ts",), _EVENT_INTS[kind], INT_LIMIT, _EMPTY[kind]) is True
        assert _all_events_good_reference(kind, events) is True


def test_bounded_refuses_other_types() -> None:
    class Odd:  # not a decoded struct: a float subclass, a bool, a text where numbers are expected
        def __init__(self, ts: Any, code: Any) -> None:
            self.ts, self.event_code, self.process_id, self.dst_port, self.logon_type = ts, code, None, None, None
            self.rule_hits = ()

    class F(float):
        pass

    ints, empty = _EVENT_INTS[EventKind.EDR], _EMPTY[EventKind.EDR]
    assert _NATIVE.bounded([Odd(1.0, 4)], ("ts",), ints, INT_LIMIT, empty) is True
    for odd in (Odd(F(1.0), 4), Odd(1, 4), Odd("1", 4), Odd(1.0, True), Odd(1.0, 4.0), Odd(1.0, "4")):
        assert _NATIVE.bounded([odd], ("ts",), ints, INT_LIMIT, empty) is False
    with pytest.raises(AttributeError):
        _NATIVE.bounded([object()], ("ts",), (), INT_LIMIT, ())


_SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 3.4e38, 1e-45, -1.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0, 5), (1, 1), (3, 7), (17, 331)])
def test_all_finite_at_every_position(dtype: Any, shape: tuple[int, int]) -> None:
    x = np.random.default_rng(0).normal(size=shape).astype(dtype)
    assert _NATIVE.all_finite(x) is bool(np.isfinite(x).all()) is True
    for k in range(0, x.size, max(1, x.size // 40)) if x.size else ():
        for value in _SPECIAL:
            y = x.copy()
            y.flat[k] = value
            assert _NATIVE.all_finite(y) is bool(np.isfinite(y).all())
    # The tail past the vector width (4 float32) and the last value.
    if x.size:
        y = x.copy()
        y.flat[-1] = np.nan
        assert _NATIVE.all_finite(y) is False


def test_all_finite_at_every_length_and_position() -> None:
    """Every length across the 16-value turns, the 4-value tail and the scalar tail."""
    for n in range(70):
        x = np.ones(n, dtype=np.float32)
        assert _NATIVE.all_finite(x) is True
        for k in range(n):
            for value in (np.nan, np.inf, -np.inf):
                y = x.copy()
                y[k] = value
                assert _NATIVE.all_finite(y) is False
                assert _NATIVE.all_finite(y.astype(np.float64)) is False


def test_all_finite_refuses_other_buffers() -> None:
    with pytest.raises(ValueError):
        _NATIVE.all_finite(np.zeros(3, dtype=np.int64))
    with pytest.raises((ValueError, BufferError)):
        _NATIVE.all_finite(np.zeros((4, 4), dtype=np.float32)[:, ::2])


def test_bounded_reads_the_same_through_member_slots_as_by_name() -> None:
    """Struct fields are read through their slots, looked up again at each change of type;
    anything else (here a namespace, a property) by name: the verdict is the same."""
    from types import SimpleNamespace

    class Late(msgspec.Struct):
        code: int | None = None

        @property
        def ts(self) -> float:
            return math.inf  # a ts that is not a member slot: read by name, and refused

    good = SiemAlert(ts=1.0, host="h", rule_name="r", severity=3)
    like = SimpleNamespace(ts=2.0, severity=None)
    far = SimpleNamespace(ts=2.0, severity=INT_LIMIT + 1)
    check = _EVENT_INTS[EventKind.SIEM]
    assert _NATIVE.bounded([good, like, good, like], ("ts",), check, INT_LIMIT, ()) is True
    assert _NATIVE.bounded([good, like, good, far], ("ts",), check, INT_LIMIT, ()) is False
    assert _NATIVE.bounded([Late(code=1)], (), ("code",), INT_LIMIT, ()) is True  # the field: by slot
    assert _NATIVE.bounded([Late(code=1)], ("ts",), ("code",), INT_LIMIT, ()) is False  # the property: by name
    with pytest.raises(AttributeError):
        _NATIVE.bounded([good, SimpleNamespace(ts=1.0)], ("ts",), check, INT_LIMIT, ())
