"""Exactly-once: a transactional producer's start, and ending what its predecessor left open.

A broker shutting down cleanly (KRaft, eligible leader replicas) has its partitions
leaderless while it still serves requests; the transaction coordinator skips the markers of
a leaderless partition ("likely deleted") and still writes CompleteCommit or CompleteAbort.
A transaction can so be left open in some of its partitions, the group's offsets among
them, while decided in others: nobody reads what it left open (the last stable offset stops
before it) and the next transaction of the same producer id decides it, whatever its own
outcome. Aborted where the coordinator had committed, a batch whose outputs were visible
was scored again (duplicates); committed where it had aborted, a batch whose outputs were
gone had its offsets moved past it (loss). So a new producer first asks the coordinator how
its predecessor's last transaction ended (DescribeTransactions, KIP-664: before
InitProducerId replaces that record), then ends every output partition and the group's
offsets the same way, and waits until those markers are written before the consumer reads
the committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaClient, AIOKafkaProducer, TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.client import CoordinationType
from aiokafka.errors import IncompatibleBrokerVersion, KafkaError
from aiokafka.producer.sender import AddOffsetsToTxnHandler
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import CompactArray, CompactString, Int16, Int32, Int64, Schema, TaggedFields

from scorer.config import KafkaSettings
from scorer.errors import KafkaUnavailable
from scorer.kafka.clients import admin_client

log = logging.getLogger(__name__)

# Kafka's names of a transaction's states (TransactionState.java); a prepared one is decided.
COMMITTED = frozenset({"PrepareCommit", "CompleteCommit"})
_SETTLED = frozenset({"Empty", "CompleteCommit", "CompleteAbort"})
_TRANSACTIONAL_ID_NOT_FOUND = 105  # not in aiokafka's table of error codes
# How long a start may wait on the broker (its coordinator, the markers) before it says why in one line.
START_S = 120.0


class DescribeTransactionsResponse_v0(Response):  # type: ignore[misc]
    API_KEY = 65
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("transaction_states", CompactArray(
            ("error_code", Int16),
            ("transactional_id", CompactString("utf-8")),
            ("transaction_state", CompactString("utf-8")),
            ("transaction_timeout_ms", Int32),
            ("transaction_start_time_ms", Int64),
            ("producer_id", Int64),
            ("producer_epoch", Int16),
            ("topics", CompactArray(
                ("topic", CompactString("utf-8")),
                ("partitions", CompactArray(Int32)),
                ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class DescribeTransactionsRequest_v0(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 65
    API_VERSION = 0
    RESPONSE_TYPE = DescribeTransactionsResponse_v0
    SCHEMA = Schema(("transactional_ids", CompactArray(CompactString("utf-8"))), ("tags", TaggedFields))


class DescribeTransactionsRequest(Request[DescribeTransactionsRequest_v0]):  # type: ignore[misc]
    API_KEY = 65

    def __init__(self, transactional_ids: list[str]) -> None:
        self._ids = transactional_ids

    def build(self, request_struct_class: type[DescribeTransactionsRequest_v0]) -> DescribeTransactionsRequest_v0:
        return request_struct_class(self._ids, {})


@dataclass(frozen=True)
class LastTransaction:
    """What a transaction coordinator holds of a transactional id's last transaction."""

    state: str  # Kafka's name: Empty, Ongoing, PrepareCommit, CompleteCommit, PrepareAbort, ...
    producer_id: int
    producer_epoch: int
    partitions: tuple[TopicPartition, ...]  # its partitions while ongoing; those still without markers once prepared

    @property
    def committed(self) -> bool:
        return self.state in COMMITTED


async def describe_transaction(client: AIOKafkaClient, transactional_id: str, timeout_s: float
                               ) -> LastTransaction | None:
    """The coordinator's record of ``transactional_id``'s last transaction; None when it has
    none or the broker cannot say (DescribeTransactions is Kafka 3.0 and later). Retriable
    errors (coordinator loading or moving, a broker not answering) are retried for ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        try:
            node = await client.coordinator_lookup(CoordinationType.TRANSACTION, transactional_id)
            response: Any = await client.send(node, DescribeTransactionsRequest([transactional_id]))
            error_code, _, state, _, _, producer_id, epoch, topics, _ = response.transaction_states[0]
            if error_code == _TRANSACTIONAL_ID_NOT_FOUND:
                return None
            if error_code:
                raise kafka_errors.for_code(error_code)()
            partitions = tuple(TopicPartition(t, p) for t, ps, _ in topics for p in ps)
            return LastTransaction(state, producer_id, epoch, partitions)
        except IncompatibleBrokerVersion:
            return None
        except KafkaError as exc:
            if not exc.retriable or time.monotonic() > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def start_transactional(producer: AIOKafkaProducer, transactional_id: str, timeout_s: float) -> None:
    """``producer.start()`` for a transactional producer, bounded.

    Its InitProducerId waits until the previous producer's transaction is finished, and
    aiokafka retries the coordinator's CONCURRENT_TRANSACTIONS for ever without a word. A
    broker that cannot write that transaction's markers kept a restarted scorer silent and
    never ready for 300 s in the soak of 2026-12-04 (docs/reliability.md); this turns the
    wait into a one-line reason the supervisor sees.
    """
    try:
        await asyncio.wait_for(producer.start(), timeout_s)
    except TimeoutError:
        try:
            await producer.stop()
        except Exception as exc:  # closing a producer that never started: the reason below matters
            log.debug("closing the producer that did not start: %r", exc)
        raise KafkaUnavailable(
            f"the transactional producer {transactional_id!r} did not start within {timeout_s:.0f} s: "
            "the broker did not answer, or its transaction coordinator is still finishing the previous "
            "producer's transaction (CONCURRENT_TRANSACTIONS: its markers are not written)"
        ) from None


async def start_exactly_once(kafka: KafkaSettings, producer: AIOKafkaProducer, topics: Sequence[str],
                             timeout_s: float = START_S) -> LastTransaction | None:
    """Start ``producer`` (transactional, made from ``kafka``) and end what its predecessor left
    open in ``topics`` and the offsets of ``kafka.group_id`` as the coordinator decided it:
    committed after a commit, else aborted. Returns once those markers are written, with the
    predecessor's record (asked through an admin client of ``kafka``, open for the start only)."""
    txn_id = producer._txn_manager.transactional_id
    async with admin_client(kafka) as admin:
        client = admin._client
        last = await describe_transaction(client, txn_id, timeout_s)  # before InitProducerId replaces it
        await start_transactional(producer, txn_id, timeout_s)
        one_line_sender_errors()
        commit = last is not None and last.committed
        await end_leftover_transaction(producer, topics, kafka.group_id, commit=commit)
        deadline = time.monotonic() + timeout_s
        while (now := await describe_transaction(client, txn_id, timeout_s)) is not None and now.state not in _SETTLED:
            if time.monotonic() > deadline:
                raise KafkaUnavailable(
                    f"the transaction ending what {txn_id!r} left open is still {now.state} after {timeout_s:.0f} s: "
                    f"its markers are not written ({len(now.partitions)} partitions without a leader?)")
            await asyncio.sleep(0.05)
    log.info("the last transaction of %r was %s: what it left open is %s", txn_id,
             last.state if last is not None else "none", "committed" if commit else "aborted")
    return last


async def end_leftover_transaction(producer: AIOKafkaProducer, topics: Sequence[str], group_id: str, *,
                                   commit: bool) -> None:
    """One empty transaction over every partition of ``topics`` and the offsets of
    ``group_id``, committed or aborted: its markers, of the same producer id at the epoch
    ``start()`` (InitProducerId) bumped, end whatever the previous producer left open there
    that way. Markers that did arrive are not undone (a partition ends one transaction once).
    """
    txn = producer._txn_manager
    sender = producer._sender
    partitions = [TopicPartition(topic, p) for topic in topics for p in sorted(await producer.partitions_for(topic))]
    await producer.begin_transaction()
    ended = False
    try:
        # aiokafka 0.14 adds a partition to a transaction only when a batch goes to it and
        # adds a group only with offsets to commit; a marker needs nothing but the membership.
        for tp in partitions:
            txn.maybe_add_partition_to_txn(tp)
        while txn.partitions_to_add():  # AddPartitionsToTxn, sent by the sender routine
            if sender.sender_task.done():
                sender.sender_task.result()  # its error, or:
                raise KafkaError("producer sender stopped")
            await asyncio.sleep(0.01)
        # AddOffsetsToTxn with no TxnOffsetCommit after it (the sender would spin on an empty
        # one): the group's offsets partition gets the marker, no offset is written.
        while not await AddOffsetsToTxnHandler(sender, group_id).do(
                await sender._find_coordinator(CoordinationType.TRANSACTION, txn.transactional_id)):
            pass
        if commit:
            await producer.commit_transaction()
            ended = True
    finally:
        if not ended:
            await producer.abort_transaction()


class _OneLineSenderDeath(logging.Filter):
    """aiokafka logs the end of its sender routine with a traceback; the scoring loop
    replaces the producer and says why in one line, so the traceback only alarms."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.getMessage() == "Unexpected error in sender routine":
            exc = record.exc_info[1]
            record.msg, record.args = "Unexpected error in sender routine: %r", (exc,)
            record.exc_info = record.exc_text = None
        return True


def one_line_sender_errors() -> None:
    """Install :class:`_OneLineSenderDeath` on aiokafka's sender logger (once)."""
    logger = logging.getLogger("aiokafka.producer.sender")
    if not any(isinstance(f, _OneLineSenderDeath) for f in logger.filters):
        logger.addFilter(_OneLineSenderDeath())
