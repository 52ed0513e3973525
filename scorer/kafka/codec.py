"""aiokafka's requests encoded, and its responses decoded, by code made once per schema, not by
walking the schema per message.

A scorer sends a fetch, a produce and an offset commit a micro-batch, so at a light load
(~190 batches a second of ~50 records) encoding requests by aiokafka's walk of each ``Schema``
was ~0.3 ms of each batch's CPU (docs/benchmarks.md section 58). Decoding is the same walk the
other way: a 205-byte produce response took ~75 µs, an offset commit's ~70.

The encoders are :mod:`scorer.kafka.encoders`' (a message's pieces, joined once).
:func:`decoder` is their mirror image over the response's buffer (``struct.unpack_from``, no
read of a ``BytesIO`` a field). The bytes and the structs are aiokafka's
(tests/kafka/test_codec.py checks every request and response struct of aiokafka's protocol on
random values, and decodes damaged bytes); a value or a message they do not take goes to
aiokafka's own encode or decode, which raises its error. :func:`install` makes
``Struct.encode`` and ``Struct.decode`` these; like :mod:`scorer.kafka.fetch` they stand in for
aiokafka's code (:data:`MIRRORED`) only where that code's digest is the one they were written
for.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from io import BytesIO
from typing import Any

from aiokafka.protocol import struct as _struct
from aiokafka.protocol import types as _types

from scorer.kafka.encoders import FIXED_FORMATS, emitter, made_once, runs
from scorer.kafka.fetch import private_refusal

log = logging.getLogger(__name__)

# The aiokafka code the encoders stand in for: a change to any of it leaves aiokafka's own.
MIRRORED = (
    _struct.Struct.encode, _types.Schema.encode, _types.Array.encode, _types.String.encode, _types.Bytes.encode,
    _types.Int8.encode, _types.Int16.encode, _types.Int32.encode, _types.UInt32.encode, _types.Int64.encode,
    _types.Float64.encode, _types.Boolean.encode, _types._pack,
    _struct.Struct.decode, _types.Schema.decode, _types.Array.decode, _types.String.decode, _types.Bytes.decode,
    _types.Int8.decode, _types.Int16.decode, _types.Int32.decode, _types.UInt32.decode, _types.Int64.decode,
    _types.Float64.decode, _types.Boolean.decode, _types._unpack,
)
KNOWN = {"0.14.0": "a6ec1329e9124ba3"}


# (buffer, position, the BytesIO the buffer is of) -> (value, the position after it)
Decode = Callable[[Any, int, BytesIO], tuple[Any, int]]
_DECODERS: dict[int, tuple[Any, Decode]] = {}
_I16_FROM, _I32_FROM = struct.Struct(">h").unpack_from, struct.Struct(">i").unpack_from


class _Underrun(ValueError):
    """A length past the end of the message (aiokafka's decode then says it its way)."""


def decoder(t: Any) -> Decode:
    """The decoder of a schema type: what ``t.decode`` reads, from a buffer at a position."""
    return made_once(_DECODERS, t, _make_decoder)  # type: ignore[no-any-return]


def _make_decoder(t: Any) -> Decode:
    if t in FIXED_FORMATS:
        unpack, size = struct.Struct(">" + FIXED_FORMATS[t]).unpack_from, struct.calcsize(">" + FIXED_FORMATS[t])

        def fixed(buf: Any, pos: int, data: BytesIO) -> tuple[Any, int]:
            return unpack(buf, pos)[0], pos + size
        return fixed
    if type(t) is _types.Schema:
        return _schema_decoder(t)
    if type(t) is _types.Array:
        return _array_decoder(t.array_of)
    if type(t) is _types.String:
        encoding = t.encoding

        def string(buf: Any, pos: int, data: BytesIO) -> tuple[Any, int]:
            start, end = _sized(buf, pos + 2, _I16_FROM(buf, pos)[0])
            return (None if start < 0 else str(buf[start:end], encoding)), end
        return string
    if t is _types.Bytes:
        return _bytes_decoder

    def theirs(buf: Any, pos: int, data: BytesIO) -> tuple[Any, int]:  # compact and tagged types
        data.seek(pos)
        return t.decode(data), data.tell()
    return theirs


def _sized(buf: Any, pos: int, n: int) -> tuple[int, int]:
    """Where a length-prefixed value of ``n`` bytes at ``pos`` starts and ends: (-1, pos) for a
    null one (a negative length); :class:`_Underrun` where it runs past the message."""
    if n < 0:
        return -1, pos
    if pos + n > len(buf):
        raise _Underrun
    return pos, pos + n


def _bytes_decoder(buf: Any, pos: int, data: BytesIO) -> tuple[Any, int]:
    start, end = _sized(buf, pos + 4, _I32_FROM(buf, pos)[0])
    return (None if start < 0 else bytes(buf[start:end])), end


def _schema_decoder(schema: Any) -> Decode:
    """One function reading the schema's fields in order: runs of fixed-size fields unpacked
    at once, each other field by its decoder; a tuple of them, as ``Schema.decode``."""
    fields = schema.fields
    n = len(fields)
    namespace: dict[str, Any] = {}
    lines: list[str] = []
    for i, j, fixed in runs(fields):
        if fixed:
            fmt = ">" + "".join(FIXED_FORMATS[f] for f in fields[i:j])
            namespace[f"u{i}"] = struct.Struct(fmt).unpack_from
            names = "".join(f"v{k}, " for k in range(i, j))
            lines += [f"    {names}= u{i}(buf, pos)", f"    pos += {struct.calcsize(fmt)}"]
        else:
            namespace[f"d{i}"] = decoder(fields[i])
            lines.append(f"    v{i}, pos = d{i}(buf, pos, data)")
    values = "".join(f"v{k}, " for k in range(n))
    source = "def decode(buf, pos, data):\n" + "\n".join(lines) + f"\n    return ({values}), pos\n"
    exec(source, namespace)  # code made here from the schema's own types, nothing read
    return namespace["decode"]  # type: ignore[no-any-return]


def _array_decoder(of: Any) -> Decode:
    if of in FIXED_FORMATS:  # an array of ints: the items in one unpack
        code, size = FIXED_FORMATS[of], struct.calcsize(">" + FIXED_FORMATS[of])

        def fixed(buf: Any, pos: int, data: BytesIO) -> tuple[Any, int]:
            (n,) = _I32_FROM(buf, pos)
            pos += 4
            if n == -1:
                return None, pos
            if n <= 0:
                return [], pos  # (any other negative count reads as no items, as aiokafka's range())
            return list(struct.unpack_from(f">{n}{code}", buf, pos)), pos + n * size
        return fixed
    item = decoder(of)

    def array(buf: Any, pos: int, data: BytesIO) -> tuple[Any, int]:
        (n,) = _I32_FROM(buf, pos)
        pos += 4
        if n == -1:
            return None, pos
        out = []
        for _ in range(n):
            value, pos = item(buf, pos, data)
            out.append(value)
        return out, pos
    return array


_AIOKAFKA_ENCODE = _struct.Struct.encode
_AIOKAFKA_DECODE = _struct.Struct.decode.__func__


def struct_decode(cls: Any, data: BytesIO | bytes) -> Any:
    """``Struct.decode`` by the schema's decoder, over the message's buffer; aiokafka's where
    the message does not read (it raises aiokafka's error)."""
    if isinstance(data, bytes):
        data = BytesIO(data)
    start = data.tell()
    try:
        # A BytesIO made of bytes shares them until written to or its buffer is exported:
        # getvalue() is those bytes then, where getbuffer() copied the whole message (a
        # fetch response's MBs, to read a response header's 4 bytes).
        values, end = decoder(cls.SCHEMA)(data.getvalue(), start, data)
    except (struct.error, _Underrun, UnicodeDecodeError, LookupError):
        data.seek(start)
        return _AIOKAFKA_DECODE(cls, data)
    data.seek(end)
    return cls(*values)


def struct_encode(self: Any) -> bytes:
    """``Struct.encode`` by the schema's encoder; aiokafka's where ``struct`` refuses a value
    (it raises aiokafka's ValueError)."""
    d = self.__dict__
    schema = self.SCHEMA
    out: list[Any] = []
    try:
        emitter(schema)([d[name] for name in schema.names], out)
    except struct.error:
        return _AIOKAFKA_ENCODE(self)  # type: ignore[no-any-return]
    return b"".join(out)


_REFUSAL: list[str | None] = []  # install()'s answer, once known


def install() -> str | None:
    """``Struct.encode`` made :func:`struct_encode`, once a process (the scorer's client
    factories call this: a process that makes no client of ours, such as a benchmark's
    plain-aiokafka baseline, keeps aiokafka's); None, or why aiokafka's stays (said once)."""
    if not _REFUSAL:
        refusal = private_refusal("the schema encoders", MIRRORED, KNOWN)
        if refusal is None:
            _struct.Struct.encode = struct_encode
            _struct.Struct.decode = classmethod(struct_decode)
        else:
            log.info("requests encoded by aiokafka's schema walk: %s", refusal)
        _REFUSAL.append(refusal)
    return _REFUSAL[0]
