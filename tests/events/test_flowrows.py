"""Flows read straight into a batch's columns (``Stats.rows``, scorer/native/_native.c) against
their reference, the cut path (the record cut by ``Stats.cut``, decoded by msgspec into
CutFlowView, checked by column): a FlowRow is made only where the reference accepts the record,
and then reads every attribute the reference's view has, value and type; every other record
takes the reference path itself. Then the readers of the rows (``column``, ``numbers``,
``flow_kept``, the netflow features) give what they give for the reference's views, on real
flows, hostile records and mixed batches."""

from __future__ import annotations

import gc
import math
import struct
from types import SimpleNamespace
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import scorer.native
from scorer.bench.loadgen import payloads, templates
from scorer.bench.realistic import realistic_templates
from scorer.config import data_dir
from scorer.demo import bundled_capture
from scorer.events.columnar import _cut_flows, decode_rows, expand, flow_rows, statistics
from scorer.events.convert import INT_LIMIT, MAX_TEXT
from scorer.events.decode import DecodeFailure, EventDecoder
from scorer.events.flowviews import READ_STATISTICS, CutFlowView, FlowRow, _stats_scanner, kept_statistics
from scorer.events.structs import EventKind, FlowRecord
from scorer.features.base import column, number_columns
from scorer.features.netflow import NetflowFeatures
from scorer.pipeline.decode import decode
from scorer.pipeline.source import input_record
from tests.native.test_statistics import _object
from tests.support.native import use_native

pytestmark = pytest.mark.skipif(not scorer.native.built(), reason="scorer.native._native is not built")
_BUILT: Any = scorer.native.built_module()
STATS: Any = _stats_scanner(_BUILT) if _BUILT else None
FIELDS = tuple(f.name for f in msgspec.structs.fields(CutFlowView))
MAX = 1 << 20


def _attrs(row: Any) -> list[tuple[str, type, Any]] | None:
    """Every attribute of a row with its type (a float's bits: -0.0 is not 0.0 here), the
    statistics as the features read them (a record without any is a whole view's "{}")."""
    if row is None:
        return None
    out: list[tuple[str, type, Any]] = []
    for name in FIELDS:
        value = getattr(row, name)
        if name == "extra":
            out.append((name, bytes, statistics([value], READ_STATISTICS).tobytes()))
        else:
            out.append((name, type(value), struct.pack("<d", value) if type(value) is float else value))
    return out


def _check(values: list[Any]) -> list[Any]:
    """The rows of ``values``, checked against the reference row by row and as a batch."""
    rows = STATS.rows(list(values), MAX)
    reference = _cut_flows(STATS, list(values), MAX)
    for value, row, ref in zip(values, rows, reference, strict=True):
        if row is not None:
            assert type(row) is FlowRow
            assert ref is not None, value  # never accepts what the reference refuses
            assert _attrs(row) == _attrs(ref), value
    assert [_attrs(r) for r in flow_rows(STATS, values, MAX)] == [_attrs(r) for r in reference]
    return rows  # type: ignore[no-any-return]


def _flows(tpl: Any, events: int) -> list[bytes]:
    return [v for kind, _, v in payloads(tpl, events) if kind is EventKind.NETFLOW]


def _real(values: list[bytes]) -> None:
    rows = _check(values)
    assert None not in rows  # every canonical flow of the stream read into columns


def test_capture_flows_are_read_into_columns() -> None:
    _real(_flows(templates(bundled_capture(), tuple(EventKind)), 9000))


@pytest.mark.data
def test_realistic_flows_are_read_into_columns() -> None:
    capture = templates(bundled_capture(), tuple(EventKind))
    _real(_flows(realistic_templates(capture, data_dir(), per_kind=3000), 9000))


_TEXT = st.sampled_from(['"a"', '""', '"x\\"y"', '"\\\\"', '"\\u0041"', '"tcp"', '"TCP"', '"Tcp"', '"6"', '"-"',
                         '"(empty)"', '"null"', '"None"', '"\x01"', '"\x7f"', '"\u00e9"', '"a}"', '"}"', '"a b"',
                         '"' + "h" * MAX_TEXT + '"', '"' + "h" * (MAX_TEXT + 1) + '"', "null", "1", "true", '"'])
_INT = st.sampled_from(["0", "-0", "7", "-7", "01", "1.0", "1e2", "-", str(INT_LIMIT), str(-INT_LIMIT),
                        str(INT_LIMIT + 1), str(-INT_LIMIT - 1), "9" * 19, "9" * 20, "null", '"1"', "true", "1x"])
_FLOAT = st.one_of(st.sampled_from(["0", "-0", "-0.0", "1.5", "1e400", "1e-400", "1499432361.088203",
                                    "1499432361.0882031", "9007199254740993", "9007199254740992.5", "01", "1.",
                                    ".5", "null", '"1.0"', "NaN", "4.9e-324", "1.7976931348623157e308"]),
                   st.floats(allow_nan=False, allow_infinity=False).map(repr))
_KIND = {"uid": _TEXT, "src_ip": _TEXT, "dst_ip": _TEXT, "proto": _TEXT, "service": _TEXT, "conn_state": _TEXT,
         "history": _TEXT, "source": _TEXT, "label": _TEXT, "ts": _FLOAT, "duration": _FLOAT,
         "src_port": _INT, "dst_port": _INT, "src_bytes": _INT, "dst_bytes": _INT, "src_pkts": _INT, "dst_pkts": _INT}
_KEY = st.sampled_from([*_KIND, "extra", "other", "u\\u0069d", "uid ", "UID", "ts\\", ""])
_WS = st.sampled_from(["", "", " ", "\n ", "\t", "\r"])
_BASE = {"uid": '"u1"', "ts": "1.5", "src_ip": '"10.0.0.1"', "dst_ip": '"10.0.0.2"'}


@st.composite
def _record(draw: st.DrawFn) -> bytes:
    members = {k: v for k, v in _BASE.items() if draw(st.integers(0, 9))}  # now and then without one
    pairs = list(members.items())
    for key in draw(st.lists(_KEY, max_size=6)):
        if key == "extra":
            value = draw(_object()).decode().rstrip(",}x ") + "}" if draw(st.booleans()) else draw(
                st.sampled_from(["{}", "null", "[]", '{"FIN Flag Count":2}', '"AAAA"']))
        else:
            value = draw(_KIND.get(key, _TEXT))
        pairs.append((key, value))  # a key twice now and then
    pairs = draw(st.permutations(pairs))
    body = f",{draw(_WS)}".join(f'"{k}"{draw(_WS)}:{draw(_WS)}{v}' for k, v in pairs)
    head, tail = draw(_WS), draw(st.sampled_from(["", "", " ", "\n", ",", "}", "x", "\x00"]))
    return (head + "{" + body + draw(_WS) + "}" + tail).encode()


@settings(max_examples=2000, deadline=None)
@given(values=st.lists(_record(), min_size=1, max_size=6))
@example(values=[b'{"uid":"u","ts":1,"src_ip":"a","dst_ip":"b","src_port":-0,"extra":{"FIN Flag Count":-0.0}}'])
@example(values=[b'{"uid":"u","ts":1.0,"src_ip":"a","dst_ip":"b","proto":"icmp6","service":null}'])
def test_a_row_is_the_reference_s_view(values: list[bytes]) -> None:
    _check(values)


def test_what_is_read_and_what_takes_the_reference_path() -> None:
    good = b'{"uid":"u","ts":1.0,"src_ip":"a","dst_ip":"b","extra":{"FIN Flag Count":2}}'
    read = [good, b" " + good.replace(b":", b" : ").replace(b",", b" ,\n") + b"\n",
            b'{"uid":"u","ts":1,"src_ip":"a","dst_ip":"b"}',  # no statistics: 0.0 each, as "{}"
            b'{"dst_ip":"b","src_ip":"a","ts":-2.5e3,"uid":"u","proto":"udp","history":"ShAdDaF"}',
            b'{"uid":"u","ts":1.0,"src_ip":"a","dst_ip":"b","src_bytes":%d,"dst_bytes":%d}' % (INT_LIMIT, -INT_LIMIT)]
    left = [None, good + b"x", good[:-1], b"", b"{}", b"[]",
            good.replace(b'"u"', b'""'),  # a uid to stamp
            good.replace(b'"uid":"u",', b""), good.replace(b'"ts":1.0,', b""), good.replace(b'"a"', b'"-"'),
            good.replace(b'"a"', b'"\\u0061"'), good.replace(b'"a"', b'"\xc3\xa9"'),
            good.replace(b'"uid"', b'"u\\u0069d"'), good.replace(b'"uid":"u"', b'"uid":"u","uid":"v"'),
            good.replace(b'"uid":"u"', b'"uid":"u","other":1'), good.replace(b'"uid":"u"', b'"proto":"TCP"'),
            good.replace(b'"uid":"u"', b'"uid":"u","src_port":1.0'),
            good.replace(b'"uid":"u"', b'"uid":"u","dst_bytes":%d' % (INT_LIMIT + 1)),
            good.replace(b'"uid":"u"', b'"uid":"u","label":"%s"' % (b"x" * (MAX_TEXT + 1))),
            good.replace(b"2}", b'"2"}'), good.replace(b"2}", b"2,\"Nope\":1}")]
    rows = _check(read + left)
    assert [r is not None for r in rows] == [True] * len(read) + [False] * len(left)
    assert STATS.rows([good], len(good) - 1) == [None]  # over max_bytes: the per-record path's


def test_readers_of_rows() -> None:
    """column(), numbers() and flow_kept() read FlowRows as attrgetter reads them, in batches of
    FlowRows of several batches mixed with views and events."""
    values = _flows(templates(bundled_capture(), tuple(EventKind)), 600)
    first, second = STATS.rows(values[:80], MAX), STATS.rows(values[80:160], MAX)
    views = [msgspec.json.decode(c, type=CutFlowView) for c in STATS.cut(values[160:200])[0]]
    for rows in (first, first + second, second + views + first):
        for name in FIELDS:
            assert column(rows, name) == [getattr(r, name) for r in rows]
        numbers = ("duration", "src_bytes", "dst_bytes", "src_pkts", "dst_pkts", "dst_port", "src_port", "ts")
        got = number_columns(rows, numbers)
        assert got.tobytes() == np.array([[float(getattr(r, n)) for n in numbers] for r in rows]).tobytes()
        kept = kept_statistics(rows)
        # None where a row is no FlowRow, or with the native part off (statistics() reads them then)
        assert (kept is None) == (scorer.native.module() is None or any(type(r) is not FlowRow for r in rows))
        if kept is not None:
            assert kept.tobytes() == np.array([struct.unpack("<4d", r.extra) for r in rows]).tobytes()
    assert kept_statistics(second + views) is None and kept_statistics([]) is None
    with pytest.raises(ValueError, match="flow_kept"):
        _BUILT.flow_kept(first, np.empty((len(first), 3)))


def test_a_row_outlives_its_values() -> None:
    values = [b'{"uid":"u%d","ts":1.0,"src_ip":"10.0.0.%d","dst_ip":"b","proto":"udp"}' % (i, i % 3)
              for i in range(50)]
    rows = STATS.rows(values, MAX)
    del values
    gc.collect()
    keep = rows[7]
    del rows
    gc.collect()
    assert (keep.uid, keep.src_ip, keep.proto, keep.ts, keep.label) == ("u7", "10.0.0.1", "udp", 1.0, None)
    assert repr(keep) == "FlowRow(uid='u7')"
    with pytest.raises(AttributeError):
        keep.uid = "x"
    with pytest.raises(TypeError):
        type(keep)()


@pytest.mark.parametrize("native", ["0", "1"])
def test_matrices_equal_the_reference_s(monkeypatch: pytest.MonkeyPatch, native: str) -> None:
    """NetflowFeatures of FlowRows (and of FlowRows mixed with the reference's views, read with
    the native part on or off) give the reference views' matrices byte for byte."""
    values = _flows(templates(bundled_capture(), tuple(EventKind)), 3000)
    rows: Any = STATS.rows(values, MAX)
    reference: Any = _cut_flows(STATS, values, MAX)
    mixed: Any = [r if i % 3 else ref for i, (r, ref) in enumerate(zip(rows, reference, strict=True))]
    use_native(monkeypatch, native)
    a, b, c = NetflowFeatures(), NetflowFeatures(), NetflowFeatures()
    for lo in range(0, len(values), 250):
        want = a.transform(reference[lo:lo + 250])
        assert b.transform(rows[lo:lo + 250]).tobytes() == want.tobytes(), lo
        assert c.transform(mixed[lo:lo + 250]).tobytes() == want.tobytes(), lo
    assert not math.isnan(float(want.sum()))


def test_decode_rows_switches_with_scorer_native(monkeypatch: pytest.MonkeyPatch) -> None:
    values = _flows(templates(bundled_capture(), tuple(EventKind)), 300)
    use_native(monkeypatch, "0")
    off = decode_rows(EventKind.NETFLOW, values, MAX, views=True)
    use_native(monkeypatch, "1")
    on = decode_rows(EventKind.NETFLOW, values, MAX, views=True)
    assert FlowRow not in {type(r) for r in off} and {type(r) for r in on} == {FlowRow}
    assert [_attrs(r)[:-1] for r in on] == [_attrs(r)[:-1] for r in off]  # type: ignore[index]


_OTHER_FORMS = [  # flows the cut path refuses and the per-record path reads (a FlowRecord with a dict of statistics)
    b'{"ts":1499432400.5,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":1234,"id.resp_h":"10.0.0.2","id.resp_p":80,'
    b'"proto":"tcp","duration":1.5,"orig_bytes":100,"resp_bytes":200,"orig_pkts":3,"resp_pkts":4,"conn_state":"RSTO",'
    b'"history":"ShADadr"}',
    b'{"Src IP":"10.0.0.3","Src Port":"5555","Dst IP":"10.0.0.4","Dst Port":"443","Protocol":"6",'
    b'"Timestamp":"2017-07-07 10:00:00","Flow Duration":"2500","FIN Flag Count":"1","Bwd RST Flags":"2"}',
    b'{"ts":1499432401.0,"src_ip":"10.0.0.5","dst_ip":"10.0.0.6","extra":{"RST Flag Count":3}}',  # no uid: stamped
]


def test_a_batch_of_rows_and_events_is_scored_as_its_records_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A micro-batch decoded by the pipeline with FlowRows, a stamped view and per-record events
    among them: the same events once expanded and the same feature matrix as decoding each record
    alone, with the same dead letters."""
    values = _flows(templates(bundled_capture(), tuple(EventKind)), 900)
    mixed = values[:100] + _OTHER_FORMS[:1] + values[100:200] + _OTHER_FORMS[1:] + [b'{"ts":"x"}'] + values[200:]
    inputs = [input_record(EventKind.NETFLOW, v, None, "events.netflow", 0, i) for i, v in enumerate(mixed)]
    decoder = EventDecoder()
    runtimes: Any = {EventKind.NETFLOW: SimpleNamespace(features=NetflowFeatures())}  # what decode reads of one
    use_native(monkeypatch, "1")
    batch = decode(decoder, inputs, runtimes, {})
    expected = [decoder.decode(r.kind, r.value, r.ref) for r in inputs]
    assert [(f.reason, f.ref) for f in batch.failures] == [
        (f.reason, f.ref) for f in expected if isinstance(f, DecodeFailure)]
    rows = [row for row, _ in batch.by_kind[EventKind.NETFLOW]]
    assert {type(r) for r in rows} == {FlowRow, CutFlowView, FlowRecord}
    events = [e for e in expected if not isinstance(e, DecodeFailure)]
    assert [expand(EventKind.NETFLOW, row, rec.value or b"", rec.ref)
            for row, rec in batch.by_kind[EventKind.NETFLOW]] == events
    assert NetflowFeatures().transform(rows).tobytes() == NetflowFeatures().transform(events).tobytes()


def test_runs_of_digits_of_every_length_are_read_as_the_reference() -> None:
    """Statistics the scanner skips (not read by the features), their integer and fraction digits in
    runs of every length up to 40, followed by what ends a number or makes it malformed (the bytes
    on either side of the digits, a dot, an exponent, a byte above 0x7f), at every distance from the
    record's end: a row exactly where the reference makes one, with its values."""
    good = b'{"uid":"u","ts":1.0,"src_ip":"a","dst_ip":"b","extra":{"Flow Duration":%s,"FIN Flag Count":2}}'
    last = b'{"uid":"u","ts":1.0,"src_ip":"a","dst_ip":"b","extra":{"FIN Flag Count":2,"Flow Duration":%s}}'
    tails = [b"", b"/", b":", b".", b".5", b"e1", b"E-2", b"x", b"\xff", b"0", b" ", b"-1"]
    values = []
    for digits in range(1, 41):
        run = b"".join(b"%d" % ((7 * i + 3) % 10) for i in range(digits))
        for number in (b"1" + run, b"-9" + run, b"0." + run, b"-3." + run, b"12." + run + b"5", b"0" + run):
            for tail in tails:
                values += [good % (number + tail), last % (number + tail), last % (number + tail) + b" " * digits]
    rows = _check(values)  # the cut path reads numbers with the scanner too: JSON itself says which are
    for value, row in zip(values, rows, strict=True):
        try:
            msgspec.json.decode(value)
        except msgspec.DecodeError:
            assert row is None, value
        else:
            assert row is not None, value
