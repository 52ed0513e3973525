"""``column`` (scorer/native/_native.c) against its reference, ``list(map(attrgetter(attr),
events))``: the same objects in the same order, and the same exception, for msgspec structs
(their fields are slots, read through the descriptor), runs of several types in one list, and
everything a slot read must not shortcut: properties, instance dicts, types with their own
``__getattribute__`` or ``__getattr__``, unset slots, a read that changes the list."""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import pytest

import scorer.native
from scorer.events.flowviews import CutFlowView
from scorer.events.structs import FlowRecord, SiemAlert
from scorer.features.base import column
from tests.support.native import use_native

pytestmark = pytest.mark.skipif(not scorer.native.built(), reason="scorer.native._native is not built")
NATIVE: Any = scorer.native.built_module()


class Slots:
    __slots__ = ("a", "b")

    def __init__(self, a: object) -> None:
        self.a = a  # b left unset


class Prop:
    @property
    def a(self) -> str:
        return "property"


class Dict:
    def __init__(self) -> None:
        self.a = "dict"


class Hook(Slots):
    __slots__ = ()

    def __getattr__(self, name: str) -> str:
        return "hook"


class Own(Slots):
    __slots__ = ()

    def __getattribute__(self, name: str) -> Any:
        return "own" if name == "a" else object.__getattribute__(self, name)


def _same(events: list[Any], attr: str) -> None:
    try:
        want: Any = list(map(attrgetter(attr), events))
    except AttributeError as exc:
        want = type(exc)
    try:
        got: Any = NATIVE.column(events, attr)
    except AttributeError as exc:
        got = type(exc)
    assert got == want and (not isinstance(want, list) or all(g is w for g, w in zip(got, want, strict=True)))


def test_structs_and_runs_of_types() -> None:
    flow = FlowRecord(ts=1.0, src_ip="10.0.0.1", dst_ip="10.0.0.2", uid="f")
    alert = SiemAlert(ts=2.0, rule_name="r", uid="s")
    view = CutFlowView(ts=3.0, src_ip="a", dst_ip="b", uid="v")
    mixed = [flow, flow, alert, view, view, flow, Slots(7), Prop(), Dict(), Hook(1), Own(2)]
    for attr in ("uid", "ts", "src_ip"):
        _same([flow, alert, view, flow], attr)
    _same(mixed, "a")  # every type but the structs has an "a"
    _same(mixed[6:], "a")
    _same([], "a")


def test_what_raises_raises_alike() -> None:
    _same([Slots(1), Slots(2)], "b")  # an unset slot
    _same([Hook(1)], "b")  # ... that __getattr__ answers
    _same([FlowRecord(ts=1.0, src_ip="a", dst_ip="b"), Dict()], "nope")
    with pytest.raises(TypeError):
        NATIVE.column((Slots(1),), "a")
    with pytest.raises(TypeError):
        NATIVE.column([Slots(1)], b"a")


def test_a_read_that_shrinks_the_list_stops_cleanly() -> None:
    events: list[Any] = []

    class Shrink:
        @property
        def a(self) -> int:
            events.clear()
            return 1

    events.extend([Shrink(), Shrink(), Shrink()])
    with pytest.raises(RuntimeError, match="changed size"):
        NATIVE.column(events, "a")


@pytest.mark.parametrize("native", ["0", "1"])
def test_features_get_the_same_list_either_way(monkeypatch: pytest.MonkeyPatch, native: str) -> None:
    use_native(monkeypatch, native)
    flows = [FlowRecord(ts=float(i), src_ip=f"10.0.0.{i % 7}", dst_ip="b", uid=str(i)) for i in range(200)]
    for n in (1, 63, 64, 200):
        assert column(flows[:n], "src_ip") == [f.src_ip for f in flows[:n]]
        assert column(tuple(flows[:n]), "ts") == [f.ts for f in flows[:n]]
