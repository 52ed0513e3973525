"""aiokafka's requests encoded by code made once per schema, in pieces joined once.

aiokafka encodes a request by walking its ``Schema``: a Python call, a ``struct.pack`` and a
bytes object per field, a generator per array, and every level joins its own bytes. A fetch
request of twelve partitions took 35-55 µs on an idle process and ~100 µs in a scoring
process at 10,000 events/s (docs/benchmarks.md section 58), and a produce request's record
batches, hundreds of KB each, were copied once per level of its schema (section 61).

:func:`emitter` turns a schema type into one Python function that appends the message's
pieces to a list: consecutive fixed-size fields (ints, floats, booleans) packed by one
``struct.Struct``, strings, bytes and arrays (of such fields or of schemas) by small
functions, any other type (the flexible versions' compact types, tagged fields) by its own
``encode``; bytes values go in as they are. The message's owner joins them once
(:func:`scorer.kafka.codec.struct_encode`; :mod:`scorer.kafka.connection` hands them to the
transport). The decoders of :mod:`scorer.kafka.codec` share :data:`FIXED_FORMATS`,
:func:`runs` and :func:`made_once`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka.protocol import types as _types

Emit = Callable[[Any, list[Any]], None]  # (value, the pieces of the message so far)

# struct's format of each fixed-size type (the type itself is the schema's field, a class).
FIXED_FORMATS: dict[Any, str] = {_types.Int8: "b", _types.Int16: "h", _types.Int32: "i", _types.UInt32: "I",
                          _types.Int64: "q", _types.Float64: "d", _types.Boolean: "?"}
_I16, _I32 = struct.Struct(">h").pack, struct.Struct(">i").pack
_NULL16, _NULL32 = _I16(-1), _I32(-1)
_ENCODERS: dict[int, tuple[Any, Emit]] = {}  # id(schema type) -> (the type, kept alive; its emitter)


def made_once(made: dict[int, tuple[Any, Any]], t: Any, make: Callable[[Any], Any]) -> Any:
    found = made.get(id(t))
    if found is None or found[0] is not t:
        found = made[id(t)] = (t, make(t))
    return found[1]


def runs(fields: Sequence[Any]) -> list[tuple[int, int, bool]]:
    """A schema's fields as (start, end, fixed): each maximal run of fixed-size fields, and
    every other field on its own."""
    out: list[tuple[int, int, bool]] = []
    i = 0
    while i < len(fields):
        j = i
        while j < len(fields) and fields[j] in FIXED_FORMATS:
            j += 1
        out.append((i, j, True) if j > i else (i, i + 1, False))
        i = max(j, i + 1)
    return out


def emitter(t: Any) -> Emit:
    """What appends ``t.encode(value)``'s bytes, in pieces, to a list: a message is joined once
    at its top. A produce request's record batches (hundreds of KB each) were copied once
    per level of its schema when every level joined its own (6 times before the connection
    sends them)."""
    return made_once(_ENCODERS, t, _make)  # type: ignore[no-any-return]


def _make(t: Any) -> Emit:
    if t in FIXED_FORMATS:
        pack = struct.Struct(">" + FIXED_FORMATS[t]).pack
        return lambda value, out: out.append(pack(value))
    if type(t) is _types.Schema:
        return _schema(t)
    if type(t) is _types.Array:
        return _array(t.array_of)
    if type(t) is _types.String:
        return _string(t.encoding)
    if t is _types.Bytes:
        return _bytes
    theirs = t.encode  # compact and tagged types: aiokafka's own
    return lambda value, out: out.append(theirs(value))


def _schema(schema: Any) -> Emit:
    """One function of ``item`` (a sequence of the schema's field values): runs of fixed-size
    fields packed at once, each other field by its emitter."""
    fields = schema.fields
    n = len(fields)
    namespace: dict[str, Any] = {}
    lines: list[str] = []
    for i, j, fixed in runs(fields):
        if fixed:
            namespace[f"p{i}"] = struct.Struct(">" + "".join(FIXED_FORMATS[f] for f in fields[i:j])).pack
            lines.append(f"    append(p{i}({', '.join(f'item[{k}]' for k in range(i, j))}))")
        else:
            namespace[f"e{i}"] = emitter(fields[i])
            lines.append(f"    e{i}(item[{i}], out)")
    source = (f"def emit(item, out):\n"
              f"    if len(item) != {n}:\n"
              f"        raise ValueError('Item field count does not match Schema')\n"
              f"    append = out.append\n" + "\n".join(lines) + "\n")
    exec(source, namespace)  # code made here from the schema's own types, nothing read
    return namespace["emit"]  # type: ignore[no-any-return]


def _array(of: Any) -> Emit:
    if of in FIXED_FORMATS:  # an array of ints: the count and the items in one pack
        code = FIXED_FORMATS[of]

        def fixed(items: Sequence[Any] | None, out: list[Any]) -> None:
            out.append(_NULL32 if items is None else struct.pack(f">i{len(items)}{code}", len(items), *items))
        return fixed
    item = emitter(of)

    def array(items: Sequence[Any] | None, out: list[Any]) -> None:
        if items is None:
            out.append(_NULL32)
            return
        out.append(_I32(len(items)))
        for value in items:
            item(value, out)
    return array


def _string(encoding: str) -> Emit:
    def string(value: str | None, out: list[Any]) -> None:
        if value is None:
            out.append(_NULL16)
            return
        encoded = str(value).encode(encoding)
        out.append(_I16(len(encoded)))
        out.append(encoded)
    return string


def _bytes(value: bytes | None, out: list[Any]) -> None:
    if value is None:
        out.append(_NULL32)
        return
    out.append(_I32(len(value)))
    out.append(value)
