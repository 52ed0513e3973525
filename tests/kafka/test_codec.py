"""The schema encoders against aiokafka's own on every request and response struct of its
protocol, with random values: the same bytes, or the same error."""

from __future__ import annotations

import importlib
import pkgutil
import random
from io import BytesIO
from typing import Any

import aiokafka.protocol
import pytest
from aiokafka.protocol import types as t
from aiokafka.protocol.struct import Struct

from scorer.kafka import codec

_RANGES = {t.Int8: 8, t.Int16: 16, t.Int32: 32, t.Int64: 64}


def _structs() -> list[type[Struct]]:
    found: dict[str, type[Struct]] = {}
    for module in pkgutil.iter_modules(aiokafka.protocol.__path__):
        loaded = importlib.import_module(f"aiokafka.protocol.{module.name}")
        for name, obj in vars(loaded).items():
            if isinstance(obj, type) and issubclass(obj, Struct) and obj is not Struct:
                struct_type: type[Struct] = obj
                if len(struct_type.SCHEMA.fields):
                    found[f"{module.name}.{name}"] = struct_type
    return [found[k] for k in sorted(found)]


STRUCTS = _structs()


def _value(kind: Any, rnd: random.Random, wild: bool) -> Any:
    """A value of schema type ``kind``; ``wild``: now and then one aiokafka refuses."""
    if kind in _RANGES:
        bits = _RANGES[kind]
        if wild and rnd.random() < 0.05:
            return 1 << bits  # out of range
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return rnd.choice([0, 1, -1, low, high, rnd.randrange(low, high + 1)])
    if kind is t.UInt32:
        return rnd.choice([0, 1, (1 << 32) - 1, rnd.randrange(0, 1 << 32)])
    if kind is t.Float64:
        return rnd.choice([0.0, -1.5, 1e300, rnd.random()])
    if kind is t.Boolean:
        return rnd.choice([True, False, 0, 1])
    if kind is t.UnsignedVarInt32:
        return rnd.choice([0, 1, 127, 128, (1 << 32) - 1, rnd.randrange(0, 1 << 32)])
    if kind is t.VarInt32:
        return rnd.randrange(-(1 << 31), 1 << 31)
    if kind is t.VarInt64:
        return rnd.randrange(-(1 << 63), 1 << 63)
    if kind is t.TaggedFields:
        return rnd.choice([{}, {1: b"x"}, {2: b"", 5: b"yz"}])
    if kind in (t.Bytes, t.CompactBytes):
        return None if rnd.random() < 0.15 else bytes(rnd.randrange(256) for _ in range(rnd.choice([0, 1, 5, 300])))
    if isinstance(kind, t.String):
        if wild and rnd.random() < 0.05:
            return 12345  # not a str: both write str(value)
        return None if rnd.random() < 0.15 else rnd.choice(["", "events.edr", "é-ü-✓", "x" * 200])
    if isinstance(kind, t.Array):
        if rnd.random() < 0.1:
            return None
        return [_value(kind.array_of, rnd, wild) for _ in range(rnd.choice([0, 1, 2, 5]))]
    if type(kind) is t.Schema:
        return tuple(_value(f, rnd, wild) for f in kind.fields)
    raise AssertionError(f"a schema type the test does not make values of: {kind!r}")


def _encoded(encode: Any, s: Struct) -> tuple[str, Any]:
    try:
        return "bytes", encode(s)
    except Exception as exc:  # the same error type where aiokafka refuses
        return "error", type(exc)


@pytest.mark.parametrize("wild", [False, True])
def test_every_struct_encodes_as_aiokafka_encodes_it(wild: bool) -> None:
    assert len(STRUCTS) > 200, "aiokafka's protocol structs were found"
    rnd = random.Random(7 if wild else 3)
    refused = 0
    for cls in STRUCTS:
        for _ in range(8):
            s = object.__new__(cls)  # (some have their own __init__: request headers)
            s.__dict__.update(zip(cls.SCHEMA.names, [_value(f, rnd, wild) for f in cls.SCHEMA.fields], strict=True))
            ours, theirs = _encoded(codec.struct_encode, s), _encoded(codec._AIOKAFKA_ENCODE, s)
            assert ours == theirs, cls.__name__
            refused += theirs[0] == "error"
    assert (refused > 0) == wild


def test_it_is_installed_where_aiokafka_is_the_version_mirrored() -> None:
    assert codec.install() is None  # (aiokafka 0.14.0, the source the encoders were checked against)
    assert Struct.encode is codec.struct_encode


def _decoded(decode: Any, cls: type[Struct], data: bytes) -> tuple[str, Any, int]:
    buffer = BytesIO(data)
    try:
        out = decode(cls, buffer)
    except Exception as exc:  # the same error type where aiokafka refuses
        return "error", type(exc), -1
    return "struct", (type(out), out.__dict__), buffer.tell()


def test_every_struct_decodes_as_aiokafka_decodes_it_whole_or_damaged() -> None:
    rnd = random.Random(11)
    damaged = 0
    for cls in STRUCTS:
        for _ in range(6):
            s = object.__new__(cls)
            s.__dict__.update(zip(cls.SCHEMA.names, [_value(f, rnd, False) for f in cls.SCHEMA.fields], strict=True))
            data = codec._AIOKAFKA_ENCODE(s)
            whole = _decoded(codec.struct_decode, cls, data)
            assert whole == _decoded(codec._AIOKAFKA_DECODE, cls, data), cls.__name__
            for cut in ([rnd.randrange(0, len(data))] if data else []):  # cut short, a byte changed
                changed = bytearray(data)
                changed[rnd.randrange(0, len(data))] = rnd.randrange(256)
                for bad in (data[:cut], bytes(changed), data + b"\x00\x01"):
                    assert _decoded(codec.struct_decode, cls, bad) == _decoded(codec._AIOKAFKA_DECODE, cls, bad), \
                        cls.__name__
                    damaged += 1
    assert damaged > 1000


def test_a_response_is_read_from_where_its_header_ends() -> None:
    """As the connection reads one: the header first, then the body from the same BytesIO."""
    from aiokafka.protocol.api import ResponseHeader_v0
    from aiokafka.protocol.produce import ProduceResponse_v7

    body = ProduceResponse_v7([("events.edr", [(0, 0, 42, -1, 7)])], 0)
    buffer = BytesIO(codec._AIOKAFKA_ENCODE(ResponseHeader_v0(9)) + codec._AIOKAFKA_ENCODE(body))
    assert codec.struct_decode(ResponseHeader_v0, buffer).correlation_id == 9
    assert codec.struct_decode(ProduceResponse_v7, buffer) == body
    assert buffer.tell() == len(buffer.getvalue())
