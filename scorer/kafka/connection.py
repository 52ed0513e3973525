"""A request handed to a broker connection's transport in pieces: aiokafka's
``AIOKafkaConnection.send`` without its two copies of every message.

aiokafka's ``send`` concatenates the encoded header and request, then the size and that:
two copies of the whole message before the transport's own. A produce request carries a
micro-batch's outputs, MBs of them under an attack-heavy load (the capture's alerts are
~0.9 KB an event), and was copied six more times while its schema was encoded
(:mod:`scorer.kafka.codec` now joins a message once). Here the size, the header's pieces and
the request's (its record batches as they are) go to the transport together
(``writelines``: one join on Python 3.11, a gathered send from 3.12). Everything else is
aiokafka's send as it is; :func:`install` puts it in place only where that send's source is
the one mirrored here (:data:`MIRRORED`, :data:`KNOWN`).

No piece is empty: from 3.12 the selector transport queues each piece as it is, and an empty
one left at the queue's end is never taken off it (CPython gh-155888), so the transport
calls its writer on every turn of the loop and never drains, a produce request's ack awaited
for ever.
"""

from __future__ import annotations

import logging
import struct
from typing import Any

import aiokafka.errors as Errors
from aiokafka.conn import AIOKafkaConnection, CloseReason
from aiokafka.util import wait_for

from scorer.kafka.encoders import emitter
from scorer.kafka.fetch import private_refusal

log = logging.getLogger(__name__)

MIRRORED = (AIOKafkaConnection.send,)
KNOWN = {"0.14.0": "5909ea32f4efca49"}
_I32 = struct.Struct(">i").pack


def pieces(header: Any, request: Any) -> list[Any]:
    """The size-prefixed message of ``header`` and ``request`` (two aiokafka ``Struct``\\s), in
    pieces that join to what aiokafka writes (none empty); its own encoding where ours refuses a
    value."""
    out: list[Any] = [b""]
    try:
        for part in (header, request):
            d = part.__dict__
            emitter(part.SCHEMA)([d[name] for name in part.SCHEMA.names], out)
    except struct.error:
        out[1:] = [header.encode() + request.encode()]  # aiokafka's error, raised its way
    out[0] = _I32(sum(map(len, out)))
    return list(filter(None, out))  # an empty string, array or batch encodes to b""


def send(self: Any, request: Any, expect_response: bool = True) -> Any:
    """``AIOKafkaConnection.send``, the message written in :func:`pieces`."""
    if self._writer is None:
        raise Errors.KafkaConnectionError(f"No connection to broker at {self._host}:{self._port}")

    request_struct = request.prepare(self._versions)

    correlation_id = self._next_correlation_id()
    header = request_struct.build_request_header(correlation_id=correlation_id, client_id=self._client_id)
    message = pieces(header, request_struct)
    try:
        self._writer.writelines(message)
    except OSError as err:
        self.close(reason=CloseReason.CONNECTION_BROKEN)
        raise Errors.KafkaConnectionError(f"Connection at {self._host}:{self._port} broken: {err}") from err

    log.debug("Request to %s:%d %d: %s", self._host, self._port, correlation_id, request_struct)

    if not expect_response:
        return self._writer.drain()
    fut = self._loop.create_future()
    self._requests.append((correlation_id, request_struct, fut))
    return wait_for(fut, self._request_timeout)


_REFUSAL: list[str | None] = []  # install()'s answer, once known


def install() -> str | None:
    """``AIOKafkaConnection.send`` made :func:`send`, once a process; None, or why aiokafka's
    stays (said once)."""
    if not _REFUSAL:
        refusal = private_refusal("the connection's send in pieces", MIRRORED, KNOWN)
        if refusal is None:
            AIOKafkaConnection.send = send
        else:
            log.info("requests written by aiokafka's send: %s", refusal)
        _REFUSAL.append(refusal)
    return _REFUSAL[0]
