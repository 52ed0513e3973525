"""``FieldMap`` (scorer/native/_fieldmap.c) against its oracle, ``msgspec.json.decode(data,
type=dict[str, str])``: for every input, FieldMap either refuses it (ValueError) or holds exactly
the oracle's items in the oracle's order; it refuses what its contract says it must (duplicate
keys, keys that are not plain printable ASCII, long keys, many pairs, lone surrogates, invalid
UTF-8, control characters, bad escapes, trailing data, non-string values). Inputs: the realistic
stream's EDR fields, hypothesis-made dicts encoded by msgspec and json.dumps, byte mutations of
valid objects, and hand-written hostile cases. Then the Mapping API and ``index_rows``."""

from __future__ import annotations

import collections.abc
import copy
import gc
import json
import pickle
import sys
import types
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

fieldmap: Any = pytest.importorskip("scorer.native._fieldmap", reason="scorer.native._fieldmap is not built")
FieldMap: Any = fieldmap.FieldMap
index_rows: Any = fieldmap.index_rows

ORACLE = msgspec.json.Decoder(dict[str, str])
PROPERTY = settings(max_examples=400, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def oracle(data: bytes) -> list[tuple[str, str]] | None:
    try:
        return list(ORACLE.decode(data).items())
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


def agrees(data: bytes) -> bool:
    """FieldMap refuses ``data`` or holds the oracle's items (in order); True when it accepted."""
    try:
        m = FieldMap(data)
    except ValueError:
        return False
    expected = oracle(data)
    assert expected is not None, f"accepted what msgspec refuses: {data!r}"
    assert m.items() == expected, data
    assert list(m) == [k for k, _ in expected]
    assert len(m) == len(expected)
    return True


def refuses(data: bytes) -> str:
    with pytest.raises(ValueError) as info:
        FieldMap(data)
    return str(info.value)


def plain_key(key: str) -> bool:
    """A key FieldMap must take: printable ASCII that JSON writes without escapes, <= 256 bytes."""
    return len(key) <= 256 and all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in key)


# ---- the realistic stream ----------------------------------------------------------------


@pytest.fixture(scope="module")
def stream_fields() -> list[bytes]:
    """The EDR ``fields`` objects of the realistic stream, as the decoder leaves them (Raw)."""
    import argparse

    from scorer.bench.loadgen import payloads, templates
    from scorer.bench.realistic import add_stream_arguments, stream_templates
    from scorer.demo import bundled_capture
    from scorer.events.structs import EventKind

    parser = argparse.ArgumentParser()
    add_stream_arguments(parser)
    tpl = stream_templates(parser.parse_args(["--stream", "realistic"]), templates(bundled_capture(), tuple(EventKind)))
    values = [v for k, _, v in payloads(tpl, 20000) if k == EventKind.EDR]

    class Wrapper(msgspec.Struct):
        fields: msgspec.Raw = msgspec.Raw(b"{}")

    return [bytes(msgspec.json.decode(v, type=Wrapper).fields) for v in values]


@pytest.mark.data
def test_the_realistic_streams_fields(stream_fields: list[bytes]) -> None:
    assert len(stream_fields) > 1000
    # The stream has escapes and non-ASCII values: both paths are taken.
    assert any(b"\\" in f for f in stream_fields) and any(max(f) > 127 for f in stream_fields)
    accepted = sum(agrees(f) for f in stream_fields)
    # Real fields are what FieldMap is for: none is refused (each would cost a msgspec decode).
    assert accepted == len(stream_fields)
    for f in stream_fields[:2000]:  # every value read, escaped or not, equal to msgspec's
        m = FieldMap(f)
        assert m.to_dict() == ORACLE.decode(f) and m == ORACLE.decode(f)


# ---- hypothesis: dicts of text, encoded by msgspec and by json.dumps ---------------------

TEXT = st.text(st.characters(codec="utf-8"), max_size=30) | st.sampled_from(
    ["", "\x00", "\x1f", "\x7f", '"', "\\", "\\u0041", "/", "\u2028", "\ud7ff", "\ue000", "\uffff", "\U0001f600",
     "\U0010ffff", "C:\\Windows\\System32\\cmd.exe", "a\r\n\tb", "é" * 40, "x" * 300])
KEYS = TEXT | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=70)


def encodings(d: dict[str, str]) -> list[bytes]:
    out = [msgspec.json.encode(d)]
    for ensure_ascii in (True, False):
        for indent in (None, 2, "\t"):
            out.append(json.dumps(d, ensure_ascii=ensure_ascii, indent=indent).encode())
    out.append(json.dumps(d, separators=(" , ", " : ")).encode() + b" \r\n\t")
    return out


@PROPERTY
@given(st.dictionaries(KEYS, TEXT, max_size=20))
def test_encoded_dicts(d: dict[str, str]) -> None:
    must_take = all(plain_key(k) for k in d)
    for data in encodings(d):
        accepted = agrees(data)
        if accepted:
            assert FieldMap(data).to_dict() == d
        # Every string msgspec and json.dumps write is valid: FieldMap takes the object unless
        # a key is one it is allowed to refuse.
        assert accepted == must_take, data


@PROPERTY
@given(st.dictionaries(KEYS, TEXT, min_size=1, max_size=8), st.data())
def test_mutated_bytes(d: dict[str, str], data: st.DataObject) -> None:
    """Valid objects with a byte changed, inserted or removed: refused, or the oracle's items."""
    raw = bytearray(data.draw(st.sampled_from(encodings(d))))
    i = data.draw(st.integers(0, len(raw) - 1))
    op = data.draw(st.sampled_from(["set", "insert", "delete"]))
    b = data.draw(st.sampled_from([0x00, 0x09, 0x1F, 0x20, 0x22, 0x2C, 0x3A, 0x5C, 0x75, 0x7B, 0x7D, 0x7F, 0x80, 0xBF,
                                   0xC0, 0xC3, 0xE0, 0xED, 0xF0, 0xF4, 0xF5, 0xFF]) | st.integers(0, 255))
    if op == "set":
        raw[i] = b
    elif op == "insert":
        raw.insert(i, b)
    else:
        del raw[i]
    agrees(bytes(raw))


@PROPERTY
@given(st.binary(max_size=60))
def test_random_bytes(data: bytes) -> None:
    agrees(data)
    agrees(b'{"k":"' + data + b'"}')


# ---- hand-written hostile cases ----------------------------------------------------------

VALID = [
    b"{}", b'{"a":"b"}', b'{"Image":"C:\\\\Windows\\\\cmd.exe","User":"NT AUTHORITY\\\\SYSTEM","n":""}',
    '{"k":"é\\u00e9\\ud83d\\ude00😀","j":"\\"\\\\\\/\\b\\f\\n\\r\\t"}'.encode(),
]


@pytest.mark.parametrize("data", VALID)
def test_truncations_at_every_byte(data: bytes) -> None:
    assert agrees(data)
    for i in range(len(data)):
        refuses(data[:i])


def test_empty_object_and_whitespace_everywhere() -> None:
    assert FieldMap(b"{}").items() == []
    assert agrees(b" \t\r\n{ \t\r\n} \t\r\n")
    spaced = b' \n{ \r\n\t"a" \t:\n "1" \r, \t"b"\n:"2"\n}\t \r\n'
    assert agrees(spaced) and FieldMap(spaced).to_dict() == {"a": "1", "b": "2"}
    for ws in (b"\x0b", b"\x0c", b"\xa0", "\u00a0".encode(), b"\x00"):  # not JSON whitespace: refused
        refuses(ws + b"{}")
        refuses(b"{" + ws + b"}")


@pytest.mark.parametrize("data", [
    b"", b" ", b"[]", b'"a"', b"1", b"null", b"{", b"}", b"{,}", b'{"a"}', b'{"a":}', b'{"a" "b"}',
    b'{"a":"b",}', b'{,"a":"b"}', b'{"a":"b" "c":"d"}', b'{"a":"b";"c":"d"}', b"{a:\"b\"}", b"{'a':'b'}",
    b'{1:"a"}', b'{"a":"b"}}', b'{"a":"b"},', b"{} {}", b"{}x", b'{"a":"b"}\x00', b"\xef\xbb\xbf{}",
])
def test_refuses_what_is_not_one_object_of_strings(data: bytes) -> None:
    refuses(data)
    agrees(data)


@pytest.mark.parametrize("value", [b"1", b"-1.5e3", b"null", b"true", b"false", b'{"x":"y"}', b"{}", b'["a"]', b"[]"])
def test_refuses_values_that_are_not_strings(value: bytes) -> None:
    assert "not a string" in refuses(b'{"a":"b","c":' + value + b"}")
    assert "not a string" in refuses(b'{"c":' + value + b',"a":"b"}')


def test_refuses_duplicate_keys() -> None:
    assert "duplicate" in refuses(b'{"a":"1","a":"2"}')
    assert "duplicate" in refuses(b'{"a":"1","b":"2","a":"1"}')
    many = [f'"k{i}":"v"' for i in range(100)]
    assert agrees(("{" + ",".join(many) + "}").encode())
    assert "duplicate" in refuses(("{" + ",".join([*many, '"k37":"w"']) + "}").encode())  # the hashed check
    long = "L" * 200  # not cached (> 64 bytes): made each time
    assert "duplicate" in refuses(f'{{"{long}":"1","{long}":"2"}}'.encode())


@pytest.mark.parametrize("key", [
    b"\\u0061", b"a\\\\b", b'a\\"b', b"a\\/b", b"\xc3\xa9", b"\xe2\x82\xac", b"a\x7f", b"a\tb", b"\x00", b"\x1f",
])
def test_refuses_keys_not_plain_printable_ascii(key: bytes) -> None:
    refuses(b'{"' + key + b'":"v"}')


def test_key_and_pair_limits() -> None:
    assert agrees(b'{"' + b"k" * 256 + b'":"v"}')
    assert "256" in refuses(b'{"' + b"k" * 257 + b'":"v"}')
    pairs = [f'"k{i}":"{i}"' for i in range(513)]
    assert agrees(("{" + ",".join(pairs[:512]) + "}").encode())
    assert "512" in refuses(("{" + ",".join(pairs) + "}").encode())
    printable = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in '"\\')
    assert FieldMap(f'{{"{printable}":"v"}}'.encode()).keys() == [printable]


@pytest.mark.parametrize("escape", [
    b"\\ud800", b"\\udbff", b"\\udc00", b"\\udfff", b"\\ud800x", b"\\ud800\\u0041", b"\\ud800\\ud800",
    b"\\udc00\\ud800", b"\\ude00\\ud83d", b"\\ud800\\n", b"\\ud800\\", b"\\ud800\\u", b"\\ud800\\udc0",
])
def test_refuses_lone_or_reversed_surrogates(escape: bytes) -> None:
    assert "surrogate" in refuses(b'{"k":"a' + escape + b'z"}')
    assert "surrogate" in refuses(b'{"k":"' + b"p" * 20 + escape + b'"}')
    assert agrees(b'{"k":"' + escape + b'"}') is False


def test_surrogate_pairs_make_one_character() -> None:
    m = FieldMap(b'{"k":"\\ud83d\\ude00\\uD83D\\uDE00","e":"\\udbff\\udfff"}')
    assert m["k"] == "\U0001f600" * 2 and m["e"] == "\U0010ffff"


@pytest.mark.parametrize("bad", [
    b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff", b"\xfe", b"\x80", b"\xbf", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98",
    b"\xc3\x28", b"\xe2\x28\xa1",
])
def test_refuses_invalid_utf8(bad: bytes) -> None:
    for value in (bad, b"abc" + bad, bad + b"abc", b"x" * 20 + bad + b"y" * 20, b"\\n" + bad, bad + b"\\u00e9"):
        assert "UTF-8" in refuses(b'{"k":"' + value + b'"}'), value
    refuses(b'{"' + bad + b'":"v"}')


@pytest.mark.parametrize("c", range(0x20))
def test_refuses_raw_control_characters(c: int) -> None:
    for value in (bytes([c]), b"a" * 17 + bytes([c]), "é".encode() + bytes([c]) + b"x" * 20):
        assert "control" in refuses(b'{"k":"' + value + b'"}')
    assert FieldMap(b'{"k":"\\u%04x"}' % c)["k"] == chr(c)  # escaped, they are fine


@pytest.mark.parametrize("escape", [b"\\x41", b"\\U0041", b"\\u12", b"\\u12g4", b"\\'", b"\\a", b"\\0", b"\\ ", b"\\",
                                    b"\\\xc3\xa9", b"\\u00"])
def test_refuses_bad_escapes(escape: bytes) -> None:
    refuses(b'{"k":"' + escape + b'"}')
    refuses(b'{"k":"' + b"p" * 30 + escape + b'"}')


def test_values_decoded() -> None:
    doc = {"ascii": "plain", "esc": 'a"b\\c/d\be\ff\ng\rh\ti', "u": "\x00\x7f\u0080\u07ff\u0800\uffff\U00010000",
           "mixed": "é\\😀\n", "empty": "", "long": "ü" * 1000 + "\\" * 1000}
    for data in encodings(doc):
        assert FieldMap(data).to_dict() == doc
    assert FieldMap(b'{"k":"\\/"}')["k"] == "/"


# ---- the Mapping API -------------------------------------------------------------------------

DOC = b'{"Image":"C:\\\\a.exe","User":"bob","Note":"caf\xc3\xa9","Empty":""}'


def test_reads() -> None:
    m = FieldMap(DOC)
    assert len(m) == 4
    assert m["Image"] == "C:\\a.exe" and m["Note"] == "café" and m["Empty"] == ""
    assert m.get("User") == "bob" and m.get("nope") is None
    assert m.get("nope", "d") == "d" and m.get("User", "d") == "bob"
    assert "User" in m and "user" not in m and "" not in m and "é" not in m
    assert list(m) == m.keys() == ["Image", "User", "Note", "Empty"]
    assert m.values() == ["C:\\a.exe", "bob", "café", ""]
    assert m.items() == [("Image", "C:\\a.exe"), ("User", "bob"), ("Note", "café"), ("Empty", "")]
    assert type(m.keys()) is list and type(m.values()) is list and type(m.items()) is list
    d = m.to_dict()
    assert type(d) is dict and d == {"Image": "C:\\a.exe", "User": "bob", "Note": "café", "Empty": ""}
    assert list(d) == m.keys()
    d["x"] = "y"
    assert "x" not in m and m.to_dict() is not d
    with pytest.raises(KeyError) as info:
        m["nope"]
    assert info.value.args == ("nope",)
    with pytest.raises(TypeError):
        m.get()
    with pytest.raises(TypeError):
        m.get("a", "b", "c")
    assert dict(m) == m.to_dict() and {**m} == m.to_dict() and dict(m.items()) == m.to_dict()
    assert isinstance(m, collections.abc.Mapping)
    match m:
        case {"User": user}:
            assert user == "bob"
        case _:
            raise AssertionError("not matched as a mapping")


def test_key_types() -> None:
    m = FieldMap(DOC)
    unhashables: tuple[object, ...] = ([], {}, set(), bytearray(b"User"))
    for unhashable in unhashables:
        with pytest.raises(TypeError):
            m.get(unhashable)
        with pytest.raises(TypeError):
            m[unhashable]
        with pytest.raises(TypeError):
            unhashable in m  # noqa: B015
    others: tuple[object, ...] = (1, None, b"User", ("User",), 1.5, frozenset())
    for other in others:
        assert m.get(other) is None and other not in m
        with pytest.raises(KeyError):
            m[other]

    class Sub(str):
        pass

    assert m[Sub("User")] == "bob" and Sub("User") in m and m.get(Sub("Userx")) is None and Sub("é") not in m
    # Another object of equal text (found by hash and text), interned or not; absent ones either way.
    assert m["".join(["Us", "er"])] == "bob" and m[sys.intern("".join(["No", "te"]))] == "café"
    assert m.get("".join(["Us", "ers"])) is None and m.get(sys.intern("".join(["Us", "ers"]))) is None
    assert m.get("".join(["Us", "é"])) is None


def test_the_key_cache_under_eviction() -> None:
    """More distinct keys than the cache has slots: every map still has its own keys, interned."""
    keys = [f"key{i}_{'x' * (i % 70)}" for i in range(6000)]
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        m = FieldMap(json.dumps(dict(zip(chunk, chunk, strict=True))).encode())
        assert m.keys() == chunk and m.values() == chunk
        assert all(k is sys.intern(k) for k in m)
    again = FieldMap(json.dumps({keys[0]: "a", keys[4096]: "b"}).encode())
    assert again.keys() == [keys[0], keys[4096]] and again[keys[4096]] == "b"


def test_c_api_capsule() -> None:
    assert "scorer.native._fieldmap._C_API" in repr(fieldmap._C_API)  # the consumers' header imports this name


def test_values_cached_and_keys_shared() -> None:
    m = FieldMap(DOC)
    assert m["User"] is m["User"] is m.get("User") is m.values()[1] and m["Image"] is m.items()[0][1]
    n = FieldMap(b'{"User":"alice","Image":"x"}')
    assert n.keys()[0] is m.keys()[1] and n.keys()[1] is m.keys()[0]
    assert m.keys()[0] is sys.intern("".join(["Ima", "ge"]))
    long = "K" * 100  # not cached, interned all the same
    assert FieldMap(f'{{"{long}":"1"}}'.encode()).keys()[0] == long


def test_equality() -> None:
    m = FieldMap(DOC)
    d = m.to_dict()
    assert m == d and d == m
    assert (m != d) is False and (d != m) is False
    assert m == FieldMap(DOC) and m == FieldMap(b'{"User":"bob","Empty":"","Note":"caf\\u00e9","Image":"C:\\\\a.exe"}')
    assert m == types.MappingProxyType(d) and m == collections.OrderedDict(reversed(d.items()))
    assert m != {**d, "User": "eve"} and m != {**d, "x": "y"} and m != {k: v for k, v in d.items() if k != "User"}
    assert m != FieldMap(b'{"Image":"C:\\\\a.exe","User":"bob","Note":"cafe","Empty":""}')
    assert m != FieldMap(b'{"Image":"C:\\\\a.exe","User":"bob","Note":"caf\xc3\xa9"}')
    assert m != {**d, "User": 1} and m != {1: 2}
    assert m.__eq__([1]) is NotImplemented and m.__ne__("x") is NotImplemented
    assert m != list(d) and m != "abc" and m != None  # noqa: E711
    assert FieldMap(b"{}") == {} and FieldMap(b"{}") != m
    with pytest.raises(TypeError):
        m < m  # noqa: B015


def test_hash_repr_pickle_copy() -> None:
    m = FieldMap(DOC)
    with pytest.raises(TypeError):
        hash(m)
    assert FieldMap.__hash__ is None
    assert repr(m) == "FieldMap(" + repr(m.to_dict()) + ")" and repr(FieldMap(b"{}")) == "FieldMap({})"
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(m, proto))
        assert type(back) is FieldMap and back == m and back.items() == m.items()
    assert m.__reduce__() == (FieldMap, (DOC,))
    assert copy.copy(m) == m and copy.deepcopy(m) == m
    assert FieldMap(b'  {"a":"b"} ').__reduce__() == (FieldMap, (b'  {"a":"b"} ',))


def test_type() -> None:
    with pytest.raises(TypeError):
        type("Sub", (FieldMap,), {})
    m = FieldMap(DOC)
    assert not gc.is_tracked(m)
    with pytest.raises(AttributeError):
        m.x = 1
    with pytest.raises((TypeError, AttributeError)):
        m["User"] = "x"
    with pytest.raises(TypeError):
        FieldMap()
    with pytest.raises(TypeError):
        FieldMap(data=DOC)
    with pytest.raises(TypeError):
        FieldMap(DOC, DOC)
    for not_a_buffer in ("{}", None, 1, {"a": "b"}):
        with pytest.raises(TypeError):
            FieldMap(not_a_buffer)


def test_buffers() -> None:
    for buf in (DOC, bytearray(DOC), memoryview(DOC), msgspec.Raw(DOC), memoryview(b"xx" + DOC + b"yy")[2:-2]):
        assert FieldMap(buf).items() == list(ORACLE.decode(DOC).items())
    mutable = bytearray(b'{"a":"bcd"}')
    m = FieldMap(mutable)
    mutable[6:9] = b"\xff\x00\\"  # a copy was indexed: the change is not seen, nor can it break a read
    assert m["a"] == "bcd"
    mutable.extend(b"x" * 1000)  # and the bytearray was not left locked


def test_the_buffer_outlives_its_other_owners() -> None:
    def build() -> Any:
        data = b"".join([b'{"a":"', b"x" * 5000, b'","b":"\\n', b"y" * 50, b'"}'])
        raw = msgspec.json.decode(b'{"f":' + data + b',"g":1}', type=dict[str, msgspec.Raw])["f"]
        return FieldMap(data), FieldMap(raw)

    m, n = build()
    gc.collect()
    junk = [bytes([i % 256]) * 5061 for i in range(500)]  # reuse the freed memory, if it were freed
    for fm in (m, n):
        assert fm["a"] == "x" * 5000 and fm["b"] == "\n" + "y" * 50
    del junk


# ---- index_rows --------------------------------------------------------------------------------


class Row(msgspec.Struct, frozen=True):
    uid: str
    fields: msgspec.Raw = msgspec.Raw(b"{}")


class OtherRow(msgspec.Struct, frozen=True, kw_only=True):
    x: int = 0
    fields: msgspec.Raw = msgspec.Raw(b"{}")


class NoFields(msgspec.Struct, frozen=True):
    uid: str


class Pretender(msgspec.Struct, frozen=True):
    uid: str
    fields = NoFields.__dict__["uid"]  # a slot descriptor of another type: its offset means nothing here


def decode_rows(docs: list[bytes], type_: type = Row) -> list[Any]:
    return list(msgspec.json.Decoder(list[type_]).decode(b"[" + b",".join(docs) + b"]"))  # type: ignore[valid-type]


def test_index_rows() -> None:
    rows: list[Any] = decode_rows([b'{"uid":"0","fields":{"a":"1"}}', b'{"uid":"1","fields":{"a":"1","a":"2"}}',
                                   b'{"uid":"2"}', b'{"uid":"3","fields":{"n":1}}',
                                   b'{"uid":"4","fields":{"b":"\\u00e9"}}'])
    rows.insert(2, None)
    raws: list[Any] = [r.fields if r is not None else None for r in rows]
    assert index_rows(rows, msgspec.Raw) == [1, 4]
    assert rows[2] is None
    for i in (0, 3, 5):
        assert type(rows[i].fields) is FieldMap
    assert rows[0].fields == {"a": "1"} and rows[3].fields == {} and rows[5].fields["b"] == "é"
    assert rows[1].fields is raws[1] and rows[4].fields is raws[4]  # refused: left with their Raw
    assert ORACLE.decode(rows[1].fields) == {"a": "2"}  # msgspec takes the last of a duplicate
    assert index_rows([None, None], msgspec.Raw) == [] and index_rows([], msgspec.Raw) == []


def test_index_rows_keeps_the_raw_alive() -> None:
    rows = decode_rows([b'{"uid":"0","fields":{"a":"' + b"z" * 3000 + b'"}}'])
    raw = rows[0].fields
    before = sys.getrefcount(raw)
    index_rows(rows, msgspec.Raw)
    assert sys.getrefcount(raw) == before  # the slot's reference moved to the FieldMap's view
    del raw
    gc.collect()
    junk = [b"q" * 3030 for _ in range(300)]
    assert rows[0].fields["a"] == "z" * 3000
    del junk


def test_index_rows_of_two_types_and_the_edr_row() -> None:
    from scorer.events.structs import EndpointEvent

    class EndpointRow(EndpointEvent, frozen=True, kw_only=True, omit_defaults=True):
        fields: msgspec.Raw = msgspec.Raw(b"{}")  # type: ignore[assignment]

    a = decode_rows([b'{"uid":"a","fields":{"k":"1"}}', b'{"uid":"b","fields":{"k":1}}'])
    b = decode_rows([b'{"x":1,"fields":{"k":"2"}}'], OtherRow)
    e = decode_rows([b'{"ts":1.0,"host":"h","event_code":1,"fields":{"Image":"c.exe","k":"\\t"}}'], EndpointRow)
    rows = [a[0], b[0], e[0], a[1], None, b[0], a[1]]  # a row listed twice is indexed once
    assert index_rows(rows, msgspec.Raw) == [3, 6]
    assert rows[0].fields == {"k": "1"} and rows[1].fields == {"k": "2"} and rows[2].fields["k"] == "\t"
    assert isinstance(rows[2], EndpointEvent) and rows[2].fields.get("Image") == "c.exe"
    assert type(rows[3].fields) is msgspec.Raw


def test_index_rows_type_errors_leave_every_row() -> None:
    def fresh() -> list[Any]:
        return decode_rows([b'{"uid":"0","fields":{"a":"1"}}', b'{"uid":"1","fields":{"a":"2"}}'])

    wrong = Row(uid="2", fields={"a": "b"})  # type: ignore[arg-type]  # msgspec does not check: a dict, not a Raw
    for bad in (NoFields(uid="x"), Pretender(uid="x"), "text", 1, wrong):
        rows = [*fresh(), bad]
        with pytest.raises(TypeError):
            index_rows(rows, msgspec.Raw)
        assert all(type(r.fields) is msgspec.Raw for r in rows[:2])
    rows = fresh()
    index_rows(rows, msgspec.Raw)
    with pytest.raises(TypeError):  # already indexed: a FieldMap is not a Raw
        index_rows(rows, msgspec.Raw)
    with pytest.raises(TypeError):
        index_rows(fresh(), bytes)
    with pytest.raises(TypeError):
        index_rows(tuple(fresh()), msgspec.Raw)
    with pytest.raises(TypeError):
        index_rows(fresh(), "Raw")
    with pytest.raises(TypeError):
        index_rows(fresh())
