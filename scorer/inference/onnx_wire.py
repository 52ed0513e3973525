"""The attributes of an ONNX model's nodes, read from its protobuf bytes.

The scorer's runtime has ONNX Runtime but not the ``onnx`` package (the ``train`` extra),
and ONNX Runtime does not expose a node's attributes; the in-process engines that read a
tree ensemble's arrays (:mod:`scorer.inference.vectorized`) read them here. Only what those
need of onnx.proto (ModelProto.graph, GraphProto.node, NodeProto.op_type and attribute,
AttributeProto's scalar and repeated values) is decoded; everything else is skipped by its
wire type, so a model with fields this does not know still reads.

onnx.proto is proto2, whose repeated scalars are not packed: a forest's node arrays are one
field (key, value) per element, 437,015 of them in the three shipped models, which read one at
a time were ~0.43 s of every scoring process's start-up. A run of such fields of one key is
read at once (:func:`_int_run`, :func:`_float_run`, numpy over the bytes); anything else
one field at a time.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any, cast

import numpy as np

# Field numbers of onnx.proto (proto2).
_MODEL_GRAPH = 7
_GRAPH_NODE = 1
_NODE_OP_TYPE, _NODE_ATTRIBUTE = 4, 5
_ATTR_NAME, _ATTR_F, _ATTR_I, _ATTR_S, _ATTR_FLOATS, _ATTR_INTS, _ATTR_STRINGS = 1, 2, 3, 4, 7, 8, 9
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """The bytes are not a protobuf message this reader can walk."""


def _varint(data: bytes | memoryview, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data):
            raise WireError("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


# The one-byte keys of AttributeProto's repeated ints (field 8, varint), floats (field 7,
# fixed32) and strings (field 9, length-delimited), one field an element.
_INT_KEY, _FLOAT_KEY, _STRING_KEY = _ATTR_INTS << 3 | _VARINT, _ATTR_FLOATS << 3 | _FIXED32, _ATTR_STRINGS << 3 | _BYTES
Buffer = bytes | memoryview


def _field(data: Buffer, at: int) -> tuple[int, int, Any, int]:
    """The field at ``at``: (number, wire type, value, where the next one starts); the value an
    int for varints and fixed-size fields (their raw bits), a view of a length-delimited one."""
    key, at = _varint(data, at)
    number, wire = key >> 3, key & 7
    value: Any
    if wire == _VARINT:
        value, at = _varint(data, at)
    elif wire == _FIXED64:
        value, at = int.from_bytes(data[at:at + 8], "little"), at + 8
    elif wire == _FIXED32:
        value, at = int.from_bytes(data[at:at + 4], "little"), at + 4
    elif wire == _BYTES:
        size, at = _varint(data, at)
        value, at = data[at:at + size], at + size
    else:
        raise WireError(f"field {number}: wire type {wire} (groups) is not read")
    if at > len(data):
        raise WireError(f"field {number} runs past the end of its message")
    return number, wire, value, at


def _fields(data: Buffer) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each field of one message (:func:`_field`)."""
    view = memoryview(data)  # a length-delimited value is a view, not a copy of its bytes
    at, end = 0, len(view)
    while at < end:
        number, wire, value, at = _field(view, at)
        yield number, wire, value


def _int_run(data: Buffer, at: int) -> tuple[list[int], int]:
    """The signed values of the run of (``_INT_KEY``, varint) fields starting at ``at``, and
    where the run ends: the first field of another key, or one that does not read (left to
    :func:`_field`, which says why)."""
    b = np.frombuffer(data, np.uint8, offset=at)
    ends = np.flatnonzero(b < 0x80)  # the last byte of each varint: a key, then its value
    pairs = len(ends) // 2
    keys, last = ends[0:2 * pairs:2], ends[1:2 * pairs:2]
    # A field of the run: its key byte right after the previous value (or at ``at``), and a
    # value of 1-10 bytes.
    previous = np.concatenate(([-1], last[:-1]))
    good = (b[keys] == _INT_KEY) & (keys == previous + 1) & (last > keys) & (last - keys <= 10)
    n = int(np.argmin(good)) if not good.all() else pairs
    if n == 0:
        return [], at
    span = b[:last[n - 1] + 1].astype(np.uint64)
    index = np.arange(len(span))
    key_at = np.zeros(len(span), np.int64)
    key_at[keys[:n]] = keys[:n]
    key_at = np.maximum.accumulate(key_at)  # each byte's field's key (the run's keys ascend)
    shift = (index - key_at - 1).clip(0) * 7
    digits = np.where(index == key_at, np.uint64(0), (span & np.uint64(0x7F)) << shift.astype(np.uint64))
    values = np.add.reduceat(digits, keys[:n]).view(np.int64)  # 64-bit two's complement, as _signed
    return values.tolist(), at + int(last[n - 1]) + 1


def _float_run(data: Buffer, at: int) -> tuple[list[float], int]:
    """The values of the run of (``_FLOAT_KEY``, 4 bytes) fields starting at ``at``, and where
    the run ends."""
    b = np.frombuffer(data, np.uint8, offset=at)
    whole = len(b) // 5
    other = np.flatnonzero(b[0:5 * whole:5] != _FLOAT_KEY)
    n = int(other[0]) if len(other) else whole
    floats = np.ascontiguousarray(b[:5 * n].reshape(n, 5)[:, 1:]).view("<f4").ravel()
    return floats.astype(np.float64).tolist(), at + 5 * n


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _float(bits: int) -> float:
    return float(struct.unpack("<f", bits.to_bytes(4, "little"))[0])


def _string_run(data: Buffer, at: int) -> tuple[list[bytes], int]:
    """The values of the run of (``_STRING_KEY``, length < 128, bytes) fields starting at
    ``at`` (a forest's node modes), and where the run ends."""
    out: list[bytes] = []
    end = len(data)
    while at + 1 < end and data[at] == _STRING_KEY and data[at + 1] < 0x80 and at + 2 + data[at + 1] <= end:
        start = at + 2
        at = start + data[at + 1]
        out.append(bytes(data[start:at]))
    return out, at


def _attribute(data: Buffer) -> tuple[str, Any]:
    name, scalar = "", cast(Any, None)
    floats: list[float] = []
    ints: list[int] = []
    strings: list[bytes] = []
    # A repeated value's key byte -> its run reader and the list it adds to.
    runs: dict[int, tuple[Callable[[Buffer, int], tuple[list[Any], int]], list[Any]]] = {
        _INT_KEY: (_int_run, ints), _FLOAT_KEY: (_float_run, floats), _STRING_KEY: (_string_run, strings)}
    at, end = 0, len(data)
    while at < end:
        found = runs.get(data[at])
        if found is not None:
            run, at = found[0](data, at)
            found[1].extend(run)
            if run:
                continue
        number, wire, value, at = _field(data, at)
        if number == _ATTR_NAME:
            name = bytes(value).decode()
        elif number == _ATTR_F and wire == _FIXED32:
            scalar = _float(value)
        elif number == _ATTR_I and wire == _VARINT:
            scalar = _signed(value)
        elif number == _ATTR_S and wire == _BYTES:
            scalar = bytes(value)
        elif number == _ATTR_FLOATS:  # packed (one BYTES field) or one FIXED32 a value
            floats += list(struct.unpack(f"<{len(value) // 4}f", value)) if wire == _BYTES else [_float(value)]
        elif number == _ATTR_INTS:
            if wire == _BYTES:
                packed = 0
                while packed < len(value):
                    v, packed = _varint(value, packed)
                    ints.append(_signed(v))
            else:
                ints.append(_signed(value))
        elif number == _ATTR_STRINGS:
            strings.append(bytes(value))
    return name, floats or ints or strings or scalar


def node_attributes(model: bytes, op_type: str) -> list[dict[str, Any]]:
    """The attributes (name -> value: float, int, bytes, or a list of one of those) of each
    node of the model's graph whose op_type is ``op_type``, in graph order."""
    found: list[dict[str, Any]] = []
    for number, wire, graph in _fields(model):
        if number != _MODEL_GRAPH or wire != _BYTES:
            continue
        for g_number, g_wire, node in _fields(graph):
            if g_number != _GRAPH_NODE or g_wire != _BYTES:
                continue
            kind, attributes = "", []
            for n_number, n_wire, value in _fields(node):
                if n_number == _NODE_OP_TYPE and n_wire == _BYTES:
                    kind = bytes(value).decode()
                elif n_number == _NODE_ATTRIBUTE and n_wire == _BYTES:
                    attributes.append(value)
            if kind == op_type:
                found.append(dict(_attribute(a) for a in attributes))
    return found
