"""scorer.kafka.connection: a request written in pieces joins to the very bytes aiokafka's
``AIOKafkaConnection.send`` writes, for every request struct of its protocol (random
values), a produce request carrying record batches as bytearrays among them."""

from __future__ import annotations

import random
import struct

from aiokafka.conn import AIOKafkaConnection
from aiokafka.protocol.api import RequestHeader_v1, RequestHeader_v2, RequestStruct
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
            assert b"".join(connection.pieces(header, s)) == _aiokafka_message(header, s), cls.__name__


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
