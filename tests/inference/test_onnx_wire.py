"""The ONNX attribute reader against the ``onnx`` package on hand-made node bytes: runs of
one-field-an-element values (what a forest's arrays are) read at once must give what reading
them one field at a time gives, wherever a run starts, stops or is broken by another field."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper

from scorer.inference.onnx_wire import WireError, node_attributes


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative ints: 10 bytes of two's complement, as protobuf writes them
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + (_varint(len(payload)) if wire == 2 else b"") + payload


def _model(attribute: bytes, op_type: str = "Probe") -> bytes:
    node = _field(4, 2, op_type.encode()) + _field(5, 2, attribute)
    return _field(7, 2, _field(1, 2, node))


def _expected(model: bytes) -> dict[str, Any]:
    (node,) = onnx.load_from_string(model).graph.node
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float):
        return isinstance(got, float) and (got == want or (math.isnan(got) and math.isnan(want)))
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_same, got, list(want)))
    return type(got) is type(want) and got == want


def _segments(rng: random.Random, kind: str) -> list[bytes]:
    """Fields of one repeated kind, as protobuf writes them (one field a value) or packed."""
    n = rng.choice([1, 2, 3, 17, 200])
    if kind == "ints":
        values = [rng.choice([0, 1, 127, 128, 300, -1, -(2 ** 63), 2 ** 63 - 1, rng.randrange(-2 ** 40, 2 ** 40)])
                  for _ in range(n)]
        if rng.random() < 0.2:
            return [_field(8, 2, b"".join(map(_varint, values)))]
        return [_field(8, 0, _varint(v)) for v in values]
    if kind == "floats":
        floats = np.array([rng.choice([0.0, -0.0, 1.5, float("inf"), float("nan"), rng.uniform(-1e6, 1e6)])
                           for _ in range(n)], "<f4")
        if rng.random() < 0.2:
            return [_field(7, 2, floats.tobytes())]
        return [_field(7, 5, floats[i:i + 1].tobytes()) for i in range(n)]
    values_s = [rng.choice([b"LEAF", b"BRANCH_LEQ", b"", b"x" * 127, b"y" * 128, b"z" * 300]) for _ in range(n)]
    return [_field(9, 2, s) for s in values_s]


@pytest.mark.parametrize("seed", range(60))
def test_runs_read_at_once_give_what_onnx_reads(seed: int) -> None:
    rng = random.Random(seed)
    kind = rng.choice(["ints", "floats", "strings"])
    type_id = {"ints": 7, "floats": 6, "strings": 8}[kind]
    fields = _segments(rng, kind)
    # Break the run with other fields: the name, the type, an unknown varint, more values.
    breaks = [_field(20, 0, _varint(type_id)), _field(1, 2, b"attr"), _field(99, 0, _varint(5)), _field(13, 2, b"doc")]
    for extra in [*rng.sample(breaks, rng.randint(0, len(breaks))), b"".join(_segments(rng, kind))]:
        fields.insert(rng.randint(0, len(fields)), extra)
    attribute = b"".join(fields)
    if _field(1, 2, b"attr") not in attribute:
        attribute = _field(1, 2, b"attr") + attribute
    if _field(20, 0, _varint(type_id)) not in attribute:
        attribute += _field(20, 0, _varint(type_id))
    model = _model(attribute)
    (read,) = node_attributes(model, "Probe")
    want = _expected(model)
    assert read.keys() == want.keys()
    assert _same(read["attr"], want["attr"]), (seed, kind)


def test_a_truncated_run_is_refused_where_it_breaks() -> None:
    ints = b"".join(_field(8, 0, _varint(v)) for v in (1, -1, 300))
    node = _field(4, 2, b"Probe") + _field(5, 2, _field(1, 2, b"attr") + ints[:-1])
    with pytest.raises(WireError, match=r"truncated varint|runs past"):
        node_attributes(_field(7, 2, _field(1, 2, node)), "Probe")
    floats = b"".join(_field(7, 5, np.float32(v).tobytes()) for v in (1.0, 2.0))
    node = _field(4, 2, b"Probe") + _field(5, 2, _field(1, 2, b"attr") + floats[:-2])
    with pytest.raises(WireError, match="runs past"):
        node_attributes(_field(7, 2, _field(1, 2, node)), "Probe")
