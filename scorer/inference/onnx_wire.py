"""The attributes of an ONNX model's nodes, read from its protobuf bytes.

The scorer's runtime has ONNX Runtime but not the ``onnx`` package (the ``train`` extra),
and ONNX Runtime does not expose a node's attributes; the in-process engines that read a
tree ensemble's arrays (:mod:`scorer.inference.vectorized`) read them here. Only what those
need of onnx.proto (ModelProto.graph, GraphProto.node, NodeProto.op_type and attribute,
AttributeProto's scalar and repeated values) is decoded; everything else is skipped by its
wire type, so a model with fields this does not know still reads.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any, cast

# Field numbers of onnx.proto (proto2).
_MODEL_GRAPH = 7
_GRAPH_NODE = 1
_NODE_OP_TYPE, _NODE_ATTRIBUTE = 4, 5
_ATTR_NAME, _ATTR_F, _ATTR_I, _ATTR_S, _ATTR_FLOATS, _ATTR_INTS, _ATTR_STRINGS = 1, 2, 3, 4, 7, 8, 9
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """The bytes are not a protobuf message this reader can walk."""


def _varint(data: bytes, at: int) -> tuple[int, int]:
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


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each field of one message: an int for varints
    and fixed-size fields (their raw bits), the bytes of a length-delimited one."""
    at, end = 0, len(data)
    while at < end:
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
        if at > end:
            raise WireError(f"field {number} runs past the end of its message")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _float(bits: int) -> float:
    return float(struct.unpack("<f", bits.to_bytes(4, "little"))[0])


def _attribute(data: bytes) -> tuple[str, Any]:
    name, scalar = "", cast(Any, None)
    floats: list[float] = []
    ints: list[int] = []
    strings: list[bytes] = []
    for number, wire, value in _fields(data):
        if number == _ATTR_NAME:
            name = value.decode()
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
                at = 0
                while at < len(value):
                    v, at = _varint(value, at)
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
                    kind = value.decode()
                elif n_number == _NODE_ATTRIBUTE and n_wire == _BYTES:
                    attributes.append(value)
            if kind == op_type:
                found.append(dict(_attribute(a) for a in attributes))
    return found
