"""The schema encoders against aiokafka's own on every request and response struct of its
protocol, with random values: the same bytes, or the same error."""

from __future__ import annotations

import random
from io import BytesIO
from typing import Any

import pytest
from aiokafka.protocol.struct import Struct

from scorer.kafka import codec
from tests.support.protocol import STRUCTS, random_struct


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
            s = random_struct(cls, rnd, wild)
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
            s = random_struct(cls, rnd)
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
