"""scorer.kafka.connection: a request written in pieces joins to the very bytes aiokafka's
``AIOKafkaConnection.send`` writes, for every request struct of its protocol (random
values), a produce request carrying record batches as bytearrays among them; no piece is
empty (Python 3.12's transport never drains one), and a request sent through a real
transport is written whole and lets the transport close."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from typing import Any

from aiokafka.conn import AIOKafkaConnection
from aiokafka.protocol.api import RequestHeader_v1, RequestHeader_v2, RequestStruct
from aiokafka.protocol.group import JoinGroupRequest
from aiokafka.protocol.produce import ProduceRequest_v7

from scorer.kafka import codec, connection
from tests.support.protocol import STRUCTS, random_struct


def _aiokafka_message(header: object, request: object) -> bytes:
    message: bytes = codec._AIOKAFKA_ENCODE(header) + codec._AIOKAFKA_ENCODE(request)
    return struct.pack(">i", len(message)) + message


def test_every_request_is_written_as_aiokafka_writes_it() -> None:
    requests = [cls for cls in STRUCTS if issubclass(cls, RequestStruct)]
    assert len(requests) > 80, "aiokafka's request structs were found"
    rnd = random.Random(11)
    for cls in requests:
        for _ in range(4):
            s = random_struct(cls, rnd)
            header = s.build_request_header(correlation_id=rnd.randrange(1 << 31), client_id="scorer-é")
            assert isinstance(header, RequestHeader_v2 if cls.FLEXIBLE_VERSION else RequestHeader_v1)
            out = connection.pieces(header, s)
            assert b"".join(out) == _aiokafka_message(header, s), cls.__name__
            assert all(out), f"{cls.__name__}: an empty piece"


def _first_join() -> JoinGroupRequest:
    """A consumer's first JoinGroup: its member id still "" (an empty string's bytes)."""
    return JoinGroupRequest("scorer", 45000, 300000, "", None, "consumer", [("range", b"")])


def test_a_first_join_has_no_empty_piece() -> None:
    s = _first_join().prepare({JoinGroupRequest.API_KEY: (0, 5)})
    header = s.build_request_header(correlation_id=1, client_id="scorer")
    out = connection.pieces(header, s)
    assert b"".join(out) == _aiokafka_message(header, s)
    assert all(out)


class _Wired:
    """What ``send`` reads of an ``AIOKafkaConnection``, its writer a real stream's."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer, self._host, self._port = writer, "socketpair", 0
        self._versions = {JoinGroupRequest.API_KEY: (0, 5)}
        self._client_id = "scorer"

    def _next_correlation_id(self) -> int:
        return 7


async def test_a_request_through_a_real_transport_is_written_whole_and_closes() -> None:
    """On Python 3.12+ an empty piece stayed in the transport's queue for good: the writer ran
    on every turn of the loop and the transport never closed (CPython gh-155888). The suite's
    own Python may be 3.11, whose transport joins the pieces: the test above guards there."""
    ours, theirs = socket.socketpair()
    try:
        _, writer = await asyncio.open_connection(sock=ours)
        wired: Any = _Wired(writer)
        await connection.send(wired, _first_join(), expect_response=False)
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 60)  # a bound for a hang, not a timing
        got = b""
        theirs.setblocking(True)
        while chunk := theirs.recv(1 << 16):
            got += chunk
        s = _first_join().prepare(wired._versions)
        assert got == _aiokafka_message(s.build_request_header(correlation_id=7, client_id="scorer"), s)
    finally:
        theirs.close()


def test_record_batches_go_as_they_are() -> None:
    batches = [bytearray(b"\x01" * 300_000), bytearray(b"\x02" * 7)]
    request = ProduceRequest_v7("txn", -1, 30000, [("alerts.netflow", [(0, batches[0]), (2, batches[1])])])
    header = request.build_request_header(correlation_id=5, client_id="scorer")
    out = connection.pieces(header, request)
    assert b"".join(out) == _aiokafka_message(header, request)
    assert any(piece is batches[0] for piece in out)  # not copied into a joined level


def test_it_is_installed_where_aiokafka_is_the_version_mirrored() -> None:
    assert connection.install() is None  # (aiokafka 0.14.0, the send mirrored)
    assert AIOKafkaConnection.send is connection.send
