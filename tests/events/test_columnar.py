"""The columnar decode against the per-record decoder: on hostile records a row is accepted
only when the per-record path makes the very same event of it (a flow view: the same event
once expanded, and the same feature row), and a whole micro-batch decoded by kind gives
every record the outcome, and every bad record the dead-letter reason, it gets one by one."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import scorer.native
from scorer.events.columnar import VIEWS, FlowStats, FlowView, decode_rows, expand
from scorer.events.decode import DecodeFailure, EventDecoder
from scorer.events.edrrows import EndpointRow
from scorer.events.flowviews import CutFlowView
from scorer.events.structs import EventKind, FlowRecord, SourceRef
from scorer.features import feature_set
from scorer.pipeline.decode import decode
from scorer.pipeline.source import input_record
from tests.support.native import use_native
from tests.support.strategies import FUZZ, hostile_record

DECODER = EventDecoder(max_record_bytes=64 * 1024)
REF = SourceRef("events.x", 0, 7)


class _Features:
    """What decode reads of a runtime: its feature set's ``reads_views``."""

    def __init__(self, kind: EventKind) -> None:
        self.features = feature_set(kind)


RUNTIMES: Any = {k: _Features(k) for k in EventKind}


@pytest.mark.data
@FUZZ
@given(record=hostile_record())
def test_an_accepted_row_is_the_per_record_event(record: tuple[EventKind | None, bytes | None]) -> None:
    kind, value = record
    if kind is None or value is None:
        return
    for views in (False, True):
        (row,) = decode_rows(kind, [value], DECODER.max_record_bytes, views)
        if row is None:
            continue  # the per-record path decides, reason included
        one = DECODER.decode(kind, value, REF)
        assert not isinstance(one, DecodeFailure), (value[:200], one.reason)
        if not row.uid:  # stamped from the record's place, as decode does
            row = msgspec.structs.replace(row, uid=one.uid)
        assert expand(kind, row, value, REF) == one
        if type(row) in VIEWS or type(row) is EndpointRow:  # its features: the event's
            assert feature_set(kind).transform([row]).tobytes() == feature_set(kind).transform([one]).tobytes()


@pytest.mark.data
@FUZZ
@given(records=st.lists(hostile_record(), min_size=1, max_size=12))
def test_a_batch_decodes_as_its_records_one_by_one(records: list[tuple[EventKind | None, bytes | None]]) -> None:
    inputs = [input_record(k, v, b"k", f"events.{k.value if k else 'x'}", 0, i) for i, (k, v) in enumerate(records)]
    batch = decode(DECODER, inputs, RUNTIMES, {})
    expected = [DECODER.decode(r.kind, r.value, r.ref, r.key) for r in inputs]
    assert [(f.reason, f.ref) for f in batch.failures] == [
        (f.reason, f.ref) for f in expected if isinstance(f, DecodeFailure)]
    for kind, items in batch.by_kind.items():
        events = [ev for ev, rec in zip(expected, inputs, strict=True)
                  if rec.kind is kind and not isinstance(ev, DecodeFailure)]
        assert [expand(kind, row, rec.value or b"", rec.ref) for row, rec in items] == events
    assert sum(batch.consumed.values()) == len(inputs)


@pytest.mark.parametrize("stats", [{"FIN Flag Count": "1"}, {"Unknown Statistic": 1.0}, {"RST Flag Count": None},
                                   {"FIN Flag Count": True}, {"FIN Flag Count": 1e308 * 10}])
@pytest.mark.parametrize("native", ["0", "auto"])
def test_statistics_a_view_cannot_hold_take_the_per_record_path(monkeypatch: pytest.MonkeyPatch, native: str,
                                                                stats: dict[str, Any]) -> None:
    use_native(monkeypatch, native)
    value = msgspec.json.encode({"ts": 1.0, "src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "extra": stats})
    assert decode_rows(EventKind.NETFLOW, [value], 1 << 20, views=True) == [None]


@pytest.mark.parametrize("native", ["0", "1"])
def test_a_view_reads_the_statistics_features_need(monkeypatch: pytest.MonkeyPatch, native: str) -> None:
    if native == "1" and not scorer.native.built():
        pytest.skip("scorer.native._native is not built")
    use_native(monkeypatch, native)
    flow = FlowRecord(ts=1.0, src_ip="a", dst_ip="b", extra={"FIN Flag Count": 2.0, "Bwd RST Flags": 1.0})
    rows: list[Any] = decode_rows(EventKind.NETFLOW, [msgspec.json.encode(flow)], 1 << 20, views=True)
    view = rows[0]
    # Native: the statistics cut out of the record in C, the ones features read kept as packed
    # floats; else a struct of floats.
    assert [type(view), type(view.extra)] == ([CutFlowView, bytes] if native == "1" else [FlowView, FlowStats])
    x = feature_set("netflow")
    assert x.transform([view]).tobytes() == feature_set("netflow").transform([flow]).tobytes()
