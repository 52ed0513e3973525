"""``Stats.cut`` (scorer/native/_native.c): a flow record with its statistics cut out of the
bytes before msgspec decodes it. Its reference is the record decoded whole (RawFlowView) with
its statistics decoded into FlowStats: a cut record decodes exactly when the record does, into
the same fields, with the statistics features read bit for bit; whatever it is unsure of (an
escaped key, two "extra" members, a nested value, statistics the scanner leaves to the
reference) it leaves whole. Hostile records are built around the places a tokenizer can go
wrong: quotes and backslashes in strings, keys spelled with escapes, whitespace, trailers."""

from __future__ import annotations

import struct
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scorer.native
from scorer.events.column_checks import checked_flows as _checked_flows
from scorer.events.flowviews import (
    CIC_STATISTICS,
    READ_STATISTICS,
    CutFlowView,
    FlowStats,
    RawFlowView,
    _stats_scanner,
    stat_attr,
    statistics,
)
from tests.native.test_statistics import _batch, _object

pytestmark = pytest.mark.skipif(not scorer.native.built(), reason="scorer.native._native is not built")
ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, TypeError)
READ = [stat_attr(n) for n in READ_STATISTICS]
_BUILT = scorer.native.built_module()  # whatever SCORER_NATIVE says
CUT: Any = _stats_scanner(_BUILT) if _BUILT else None

_TEXT = st.sampled_from(['"a"', '""', '"x\\"y"', '"\\\\"', '"\\\\\\""', '"q\\"extra\\":{}"', '"\\u0022"',
                         '"\\"extra\\":{\\"FIN Flag Count\\":1}"', '"tcp"', '"TCP"', '"-"', '"\x01"', '"\\x"'])
_SCALAR = st.sampled_from(["1", "-2", "1.5", "1e3", "null", "true", "01", "1.", "NaN", "nul", "1}", '"1"'])
_NESTED = st.sampled_from(['{"extra":{}}', '[1,"extra"]', "[]", "{}", '{"a":"}"}'])
_KEY = st.sampled_from(["uid", "ts", "src_ip", "dst_ip", "proto", "history", "src_port", "label", "extra",
                        "ext\\u0072a", "extra ", "EXTRA", 'x\\"extra', "other"])
_WS = st.sampled_from(["", "", " ", "\n ", "\t"])


@st.composite
def _record(draw: st.DrawFn) -> bytes:
    members = ['"ts":1.0', '"src_ip":"10.0.0.1"', '"dst_ip":"10.0.0.2"']
    for key in draw(st.lists(_KEY, max_size=5)):
        value = draw(_object()).decode() if key.startswith("ext") else draw(st.one_of(_TEXT, _SCALAR, _NESTED))
        members.append(f'"{key}"{draw(_WS)}:{draw(_WS)}{value}')
    if draw(st.booleans()):
        members.append('"extra":' + draw(_object()).decode().rstrip(",}x ") + "}")
    members = draw(st.permutations(members))
    head, tail = draw(_WS), draw(st.sampled_from(["", " ", "\n", ",", "}", "x"]))
    return (head + "{" + f",{draw(_WS)}".join(members) + draw(_WS) + "}" + tail).encode()


def _whole(value: bytes) -> tuple[Any, Any] | None:
    """The reference: the record's fields and its statistics, or None if either is refused."""
    try:
        row: Any = msgspec.json.decode(value, type=RawFlowView)
        return row, msgspec.json.decode(row.extra, type=FlowStats)
    except ERRORS:
        return None


def _fields(row: Any) -> dict[str, Any]:
    return {k: v for k, v in msgspec.structs.asdict(row).items() if k != "extra"}


def _check(value: bytes) -> bool:
    """Checks one record against its reference; whether it was cut."""
    (cut,), clean = CUT.cut([value])
    if cut is None:
        return False
    whole = _whole(value)
    try:
        row: Any = msgspec.json.decode(cut, type=CutFlowView)
    except ERRORS:
        assert whole is None, value  # refuses only what the reference refuses
        return True
    assert whole is not None, (value, cut)  # never accepts what the reference refuses
    assert _fields(row) == _fields(whole[0]), value
    expected = struct.pack("<4d", *(getattr(whole[1], a) for a in READ))
    assert row.extra == expected, value  # bit for bit: -0.0, rounding, the last of a repeated name
    if clean:  # the texts it calls clean pass the columnar path's own checks of them
        assert _checked_flows([row]) == [row], value
    return True


@settings(max_examples=1500, deadline=None)
@given(value=_record())
def test_a_cut_record_decodes_as_the_whole_one(value: bytes) -> None:
    _check(value)


def test_records_a_tokenizer_could_misread() -> None:
    """Cut where it is sure (an escaped quote before "extra" in a text, -0.0, an escaped
    backslash before a closing quote, whitespace around), left whole where a key may be
    "extra", where there are two, or where something follows the record."""
    cut = [b'{"uid":"\\"extra\\":{}","ts":1.0,"src_ip":"a","dst_ip":"b","extra":{"RST Flag Count":-0.0}}',
           b' {"ts":1.0,"src_ip":"a\\\\","dst_ip":"b","extra":{"Bwd RST Flags":3}}\n']
    whole = [b'{"ts":1.0,"src_ip":"a","dst_ip":"b","extra":{},"extra":{"FIN Flag Count":2}}',
             b'{"ts":1.0,"src_ip":"a","dst_ip":"b","ext\\u0072a":{"FIN Flag Count":2}}',
             b'{"ts":1.0,"src_ip":"a","dst_ip":"b","extra":{"Bwd RST Flags":3}} x']
    assert [_check(v) for v in cut + whole] == [True, True, False, False, False]


def test_what_is_cut_and_what_is_left_whole() -> None:
    good = b'{"ts":1.0,"src_ip":"a","dst_ip":"b","extra":{"FIN Flag Count":2}}'
    assert _check(good) and _check(b" " + good.replace(b":", b" : ") + b"\n")
    for whole in (b'{"ts":1.0,"extra":{},"extra":{}}', b'{"ts":1.0,"ext\\u0072a":{}}', b'{"a":[1],"extra":{}}',
                  b'{"ts":1.0,"extra":{"Nope":1}}', b'{"ts":1.0,"extra":{"FIN Flag Count":1e400}}', b"[]", b"{}",
                  b'{"ts":1.0}', b'{"extra":{"FIN Flag Count":1},"uid":"x', b""):
        assert not _check(whole), whole
    assert CUT.cut([None, 3, good])[0][:2] == [None, None]


def test_texts_called_clean() -> None:
    """Clean: every text member a string without escapes, none of the missing markers, at most
    MAX_TEXT bytes, proto lower case ASCII, uid also "", or null; a batch is clean when every
    record it cuts is (a record left whole is looked at in Python anyway)."""
    def clean(*members: str) -> bool:
        value = ('{"ts":1.0,' + "".join(m + "," for m in members) + '"extra":{"FIN Flag Count":2}}').encode()
        (cut,), ok = CUT.cut([value])
        assert cut is not None and _check(value)
        return bool(ok)
    assert clean('"src_ip":"a"', '"dst_ip":"b"', '"proto":"udp"', '"uid":""', '"label":null', '"service":"é"')
    assert clean('"proto":"icmp6"', '"other":"-"', '"other":7', '"history":"' + "h" * 8192 + '"')
    for member in ('"src_ip":""', '"dst_ip":"-"', '"label":"(empty)"', '"source":"null"', '"service":"None"',
                   '"uid":"-"', '"proto":"TCP"', '"proto":"6"', '"proto":"tcp\\u0041"', '"proto":"é"',
                   '"history":"' + "h" * 8193 + '"', '"src_ip":"a\\"b"', '"label":1', '"uid":true'):
        assert not clean('"src_ip":"a"', '"dst_ip":"b"', member), member
    good = b'{"ts":1.0,"src_ip":"a","dst_ip":"b","extra":{"FIN Flag Count":2}}'
    bad = good.replace(b'"a"', b'"-"')
    assert CUT.cut([good, good])[1] and not CUT.cut([good, bad])[1] and CUT.cut([good, b"[]"])[1]


def test_cut_views_carry_only_what_features_read() -> None:
    (cut,), _ = CUT.cut([b'{"ts":1.0,"src_ip":"a","dst_ip":"b","extra":{"FIN Flag Count":2}}'])
    row: Any = msgspec.json.decode(cut, type=CutFlowView)
    assert statistics([row.extra], READ_STATISTICS[:1]).tolist() == [[2.0]]
    with pytest.raises(ValueError, match="carry only"):
        statistics([row.extra], CIC_STATISTICS[:1])
    raw = msgspec.Raw(b'{"FIN Flag Count":5,"Fwd RST Flags":1}')  # a batch of cut and whole views
    mixed = statistics([row.extra, raw, row.extra], READ_STATISTICS)
    assert mixed.tolist() == [[2.0, 0, 0, 0], [5.0, 0, 1.0, 0], [2.0, 0, 0, 0]]
    assert np.asarray(mixed).flags.c_contiguous


@settings(max_examples=150, deadline=None)
@given(values=st.lists(_record(), min_size=1, max_size=8))
def test_a_batch_of_hostile_records_decodes_alike(values: list[bytes]) -> None:
    """Rows, dead letters (reasons and order) and the matrix: native cut or Python reference."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert _batch(monkeypatch, "1", values) == _batch(monkeypatch, "0", values)
