"""Decide's column reads of a batch's rows (``item_column``): the C pass and its Python reference
give the same lists, whatever the rows are (msgspec structs, the native scanner's FlowRows,
other objects), and refuse what is no batch of (event, record) items alike."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

import scorer.native
from scorer.events.columnar import decode_rows
from scorer.events.structs import EndpointEvent, EventKind, FlowRecord, SiemAlert
from scorer.native import findings
from tests.support.native import use_native

NATIVE = ["0", "auto"] if findings.built() else ["0"]


class _Other:
    """An event of no struct type: its attributes through a property and the instance dict."""

    def __init__(self, uid: str) -> None:
        self.uid = uid

    @property
    def rule_hits(self) -> tuple[str, ...]:
        return (self.uid,)


def _items() -> list[tuple[Any, Any]]:
    events: list[Any] = [
        EndpointEvent(uid="e1", ts=1.0, host="h", event_code=1, rule_hits=("r1", "r2")),
        EndpointEvent(uid="e2", ts=2.0, host="h", event_code=4688),
        SiemAlert(uid="s\u2028", ts=3.0, rule_name="x"),
        FlowRecord(uid="f", ts=4.0, src_ip="a", dst_ip="b"),
        _Other("o"),
        EndpointEvent(uid="e3", ts=5.0, host="h", event_code=1, rule_hits=("r3",)),
    ]
    if scorer.native.built():
        flows = [msgspec.json.encode(FlowRecord(uid=f"flow{i}", ts=float(i), src_ip="10.0.0.1", dst_ip="10.0.0.2"))
                 for i in range(3)]
        with pytest.MonkeyPatch.context() as monkeypatch:
            use_native(monkeypatch, "auto")
            events[3:3] = decode_rows(EventKind.NETFLOW, flows, 1 << 20, views=True)
    return [(event, i) for i, event in enumerate(events)]


@pytest.mark.parametrize("native", NATIVE)
def test_item_column_reads_each_events_attribute(monkeypatch: pytest.MonkeyPatch, native: str) -> None:
    use_native(monkeypatch, native)
    items = _items()
    assert findings.item_column(items, "uid") == [event.uid for event, _ in items]
    assert findings.item_column(items[:2] + items[-1:], "rule_hits") == [("r1", "r2"), (), ("r3",)]
    listed: Any = [[event, rec] for event, rec in items[:4]]  # not tuples: item[0] all the same
    assert findings.item_column(tuple(listed), "ts") == [event.ts for event, _ in items[:4]]
    assert findings.item_column([], "uid") == []


@pytest.mark.parametrize("native", NATIVE)
def test_item_column_refuses_what_the_reference_refuses(monkeypatch: pytest.MonkeyPatch, native: str) -> None:
    use_native(monkeypatch, native)
    with pytest.raises(AttributeError):
        findings.item_column(_items(), "no_such_field")
    with pytest.raises(TypeError):
        findings.item_column([(EndpointEvent(ts=1.0, host="h", event_code=1), 0), 7], "uid")  # type: ignore[list-item]
