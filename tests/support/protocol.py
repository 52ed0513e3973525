"""aiokafka's protocol structs, and random values of their schema types: what the codec and
connection tests encode and decode against aiokafka's own."""

from __future__ import annotations

import importlib
import pkgutil
import random
from typing import Any

import aiokafka.protocol
from aiokafka.protocol import types as t
from aiokafka.protocol.struct import Struct

_RANGES = {t.Int8: 8, t.Int16: 16, t.Int32: 32, t.Int64: 64}


def protocol_structs() -> list[type[Struct]]:
    found: dict[str, type[Struct]] = {}
    for module in pkgutil.iter_modules(aiokafka.protocol.__path__):
        loaded = importlib.import_module(f"aiokafka.protocol.{module.name}")
        for name, obj in vars(loaded).items():
            if isinstance(obj, type) and issubclass(obj, Struct) and obj is not Struct:
                struct_type: type[Struct] = obj
                if len(struct_type.SCHEMA.fields):
                    found[f"{module.name}.{name}"] = struct_type
    return [found[k] for k in sorted(found)]


STRUCTS = protocol_structs()


def random_value(kind: Any, rnd: random.Random, wild: bool) -> Any:
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
        return [random_value(kind.array_of, rnd, wild) for _ in range(rnd.choice([0, 1, 2, 5]))]
    if type(kind) is t.Schema:
        return tuple(random_value(f, rnd, wild) for f in kind.fields)
    raise AssertionError(f"a schema type the test does not make values of: {kind!r}")


def random_struct(cls: type[Struct], rnd: random.Random, wild: bool = False) -> Struct:
    """An instance of ``cls`` with random field values (``wild``: now and then one aiokafka refuses)."""
    s = object.__new__(cls)  # (some have their own __init__: request headers)
    s.__dict__.update(zip(cls.SCHEMA.names, [random_value(f, rnd, wild) for f in cls.SCHEMA.fields], strict=True))
    return s
