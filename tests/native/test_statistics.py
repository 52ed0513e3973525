"""The native CICFlowMeter statistics scanner (scorer/native/_native.c, ``Stats``) against its
reference, msgspec decoding the object into FlowStats: it accepts nothing the reference
refuses, every value it reads is the reference's double bit for bit, and what it is unsure of
goes to the reference; on the real streams it is sure of every flow (else it would save
nothing). Then whole micro-batches: rows, dead letters and matrices equal with and without it."""

from __future__ import annotations

import struct
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import scorer.native
from scorer.bench.loadgen import payloads, templates
from scorer.bench.realistic import Template, realistic_templates
from scorer.config import data_dir
from scorer.demo import bundled_capture
from scorer.events.columnar import CIC_STATISTICS, FlowStats, decode_rows, expand, stat_attr, statistics
from scorer.events.decode import EventDecoder
from scorer.events.flowviews import READ_STATISTICS, FlowRow, RawFlowView
from scorer.events.structs import EventKind
from scorer.features.netflow import NetflowFeatures
from scorer.pipeline.decode import decode
from scorer.pipeline.source import input_record
from tests.support.native import use_native

pytestmark = pytest.mark.skipif(not scorer.native.built(), reason="scorer.native._native is not built")
_BUILT: Any = scorer.native.built_module()
STATS: Any = _BUILT.Stats(tuple(n.encode() for n in CIC_STATISTICS)) if _BUILT else None
ALL = tuple(range(len(CIC_STATISTICS)))
ATTRS = [stat_attr(n) for n in CIC_STATISTICS]

_NUMBER = st.from_regex(r"-?(0|[1-9][0-9]{0,22})(\.[0-9]{1,22})?([eE][+-]?[0-9]{1,4})?", fullmatch=True)
_NOT_A_NUMBER = st.sampled_from(["01", "1.", ".5", "+1", "1e", "-", "NaN", "Infinity", "-Infinity", "true",
                                 "null", '"1"', "[1]", "{}", "0x10", "1e400", "-1e400", "1e-400", "-0",
                                 "-0.0", "0e0", "9007199254740993", "123456789012345678901234567890",
                                 "1.7976931348623157e308", "1.7976931348623159e308", "4.9e-324", "2.5e-324"])
_NAME = st.one_of(st.sampled_from(CIC_STATISTICS), st.sampled_from(
    ["Unknown", "flow duration", "Flow\\u0020Duration", "Flow Duration ", "Fl\u00f6w", "Flow\tDuration", ""]))
_WS = st.sampled_from(["", "", " ", "\n", "\t\r ", "\x0b", "\u00a0"])


@st.composite
def _object(draw: st.DrawFn) -> bytes:
    members = draw(st.lists(st.tuples(_NAME, st.one_of(_NUMBER, _NOT_A_NUMBER), _WS, _WS), max_size=12))
    body = ",".join(f'{a}"{k}"{b}:{a}{v}{b}' for k, v, a, b in members)
    text = draw(_WS) + "{" + body + draw(_WS) + "}" + draw(st.sampled_from(["", "", " ", ",", "}", "x"]))
    return text.encode()


def _bits(values: Any) -> list[bytes]:
    return [struct.pack("<d", float(v)) for v in values]


def _reference(raw: bytes) -> list[float] | None:
    try:
        stats = msgspec.json.decode(raw, type=FlowStats)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return None
    return [getattr(stats, a) for a in ATTRS]


def _check_one(raw: bytes) -> None:
    expected = _reference(raw)
    (sure,) = STATS.check([msgspec.Raw(raw)])
    if sure:  # never accepts what the reference refuses
        assert expected is not None, raw
    out = np.empty((1, len(ALL)))
    unsure = STATS.columns([msgspec.Raw(raw)], ALL, out)
    if not unsure:  # reading may leave to the reference what checking accepts (long integers)
        assert sure, raw
        assert _bits(out[0]) == _bits(expected), raw  # bit for bit: -0.0, rounding, last of a repeated name
    if expected is not None:  # what features read, scanner or reference, is the reference's
        assert _bits(statistics([msgspec.Raw(raw)], CIC_STATISTICS)[0]) == _bits(expected), raw


@settings(max_examples=600, deadline=None)
@given(raw=_object())
@example(raw=b'{"Flow Duration": 1, "Flow Duration": 2.5}')
@example(raw=b'{"Flow Duration": -0, "Flow IAT Mean": -0.0, "Flow IAT Std": -0e3}')
@example(raw=b'{"Flow Bytes/s": 22815.306687098284, "Flow IAT Std": 13516.94407031412}')
@example(raw=b'{"Flow Duration": 0.1e-5, "Flow IAT Max": 123.456e-20, "Idle Max": 1e22, "Idle Min": 1e23}')
@example(raw=b'{}')
def test_generated_objects_read_as_the_reference(raw: bytes) -> None:
    _check_one(raw)


@settings(max_examples=300, deadline=None)
@given(number=_NUMBER)
def test_numbers_read_as_the_reference(number: str) -> None:
    _check_one(f'{{"Flow IAT Mean":{number}}}'.encode())


def _flows(tpl: list[Template], events: int) -> list[bytes]:
    return [v for kind, _, v in payloads(tpl, events) if kind is EventKind.NETFLOW]


def _real_flows_are_read_by_the_scanner(values: list[bytes]) -> None:
    raws = [msgspec.json.decode(v, type=RawFlowView).extra for v in values]  # type: ignore[attr-defined]
    assert set(STATS.check(raws)) == {1}
    out = np.empty((len(raws), len(ALL)))
    assert STATS.columns(raws, ALL, out) == []
    expected = np.array([_reference(bytes(r)) for r in raws])
    assert out.tobytes() == expected.tobytes()
    # ... and cut out of every record (else the cut would save nothing), read alike
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_native(monkeypatch, "1")
        rows: list[Any] = decode_rows(EventKind.NETFLOW, values, 1 << 20, views=True)
    assert {type(r) for r in rows} == {FlowRow}  # read straight into the batch's columns (Stats.rows)
    read = [CIC_STATISTICS.index(n) for n in READ_STATISTICS]
    assert statistics([r.extra for r in rows], READ_STATISTICS).tobytes() == expected[:, read].tobytes()


def test_capture_flows_are_read_by_the_scanner() -> None:
    _real_flows_are_read_by_the_scanner(_flows(templates(bundled_capture(), tuple(EventKind)), 9000))


@pytest.mark.data
def test_realistic_flows_are_read_by_the_scanner() -> None:
    capture = templates(bundled_capture(), tuple(EventKind))
    _real_flows_are_read_by_the_scanner(_flows(realistic_templates(capture, data_dir(), per_kind=3000), 9000))


class _Runtime:
    def __init__(self) -> None:
        self.features = NetflowFeatures()


def _batch(monkeypatch: pytest.MonkeyPatch, native: str, values: list[bytes]) -> tuple[Any, ...]:
    use_native(monkeypatch, native)
    records = [input_record(EventKind.NETFLOW, v, b"k", "events.netflow", 0, i) for i, v in enumerate(values)]
    decoder = EventDecoder(max_record_bytes=64 * 1024)
    batch = decode(decoder, records, {EventKind.NETFLOW: _Runtime()}, {})  # type: ignore[dict-item]
    items = batch.by_kind.get(EventKind.NETFLOW, [])
    matrix = NetflowFeatures().transform([row for row, _ in items]).tobytes()
    events = [expand(EventKind.NETFLOW, row, rec.value or b"", rec.ref) for row, rec in items]
    return [(f.reason, f.ref) for f in batch.failures], events, matrix


@settings(max_examples=150, deadline=None)
@given(stats=st.lists(_object(), min_size=1, max_size=8))
def test_a_batch_with_hostile_statistics_decodes_alike(stats: list[bytes]) -> None:
    head = b'{"ts":1.0,"src_ip":"10.0.0.1","dst_ip":"10.0.0.2","extra":'
    values = [head + s + b"}" for s in stats]
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert _batch(monkeypatch, "1", values) == _batch(monkeypatch, "0", values)


def test_a_refused_statistic_is_the_reference_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    values = [b'{"ts":1.0,"src_ip":"a","dst_ip":"b","extra":{"FIN Flag Count":1e400}}',
              b'{"ts":1.0,"src_ip":"a","dst_ip":"b","extra":{"Nope":1}}',
              b'{"ts":1.0,"src_ip":"a","dst_ip":"b","extra":{"FIN\\u0020Flag Count":3}}']
    native = _batch(monkeypatch, "1", values)
    assert native == _batch(monkeypatch, "0", values)
    assert len(native[0]) + len(native[1]) == 3 and native[0]  # each has an outcome; the bad ones a reason


@settings(max_examples=150, deadline=None)
@given(batch=st.lists(_object(), min_size=1, max_size=6), other=st.lists(_object(), min_size=1, max_size=3))
def test_statistics_read_while_checking_are_the_scanned_ones(batch: list[bytes], other: list[bytes]) -> None:
    """columns() of the batch check() last saw copies what check() read; of other objects
    (an earlier batch, a copy of the same bytes) it scans: the values are the same."""
    keep = (44, 46, 33, 34)
    kept = scorer.native.built_module().Stats(tuple(n.encode() for n in CIC_STATISTICS), keep)  # type: ignore[union-attr]
    raws = [msgspec.Raw(b) for b in batch]
    copies = [msgspec.Raw(b) for b in batch + other]
    kept.check(raws)
    for objects in (raws, copies, raws[::-1]):
        a, b = np.empty((len(objects), 4)), np.empty((len(objects), 4))
        unsure_a = kept.columns(objects, keep, a)
        unsure_b = STATS.columns(objects, keep, b)
        assert unsure_a == unsure_b
        sure = [i for i in range(len(objects)) if i not in unsure_a]
        assert a[sure].tobytes() == b[sure].tobytes()
