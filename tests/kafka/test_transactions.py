"""scorer.kafka.transactions: the coordinator's record of a transactional id's last
transaction, and the empty transaction that ends what a predecessor left open before an
exactly-once scorer reads its committed offsets (issue 19; the duplicate batch of session
25's CI: a commit whose markers reached the outputs and not the offsets, then aborted)."""

from __future__ import annotations

import asyncio
import io
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaClient, TopicPartition
from aiokafka.errors import (
    CoordinatorNotAvailableError,
    IncompatibleBrokerVersion,
    TransactionalIdAuthorizationFailed,
)

from scorer.config import KafkaSettings
from scorer.kafka import admin_client, make_consumer, make_producer, make_reader
from scorer.kafka.transactions import (
    LastTransaction,
    describe_transaction,
    end_leftover_transaction,
    one_line_sender_errors,
    start_exactly_once,
)
from tests.support.kafka import KafkaBroker


@dataclass(frozen=True)
class Setup:
    settings: KafkaSettings
    outputs: list[str]
    inputs: str
    group: str
    txn_id: str


async def _setup(kafka: KafkaBroker) -> Setup:
    prefix = f"tx{uuid.uuid4().hex[:8]}"
    outputs, inputs, group = [f"{prefix}.out1", f"{prefix}.out2"], f"{prefix}.in", f"{prefix}-group"
    for name in [*outputs, inputs]:
        await kafka.acreate_topic(name, 3)
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap, group_id=group, client_id=prefix)
    return Setup(settings, outputs, inputs, group, f"{group}-{prefix}")


async def _settled(client: AIOKafkaClient, txn_id: str) -> LastTransaction:
    """The record once the coordinator has written the last transaction's markers (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        last = await describe_transaction(client, txn_id, 10)
        assert last is not None
        if last.state not in ("PrepareCommit", "PrepareAbort") or time.monotonic() > deadline:
            return last
        await asyncio.sleep(0.05)


async def _committed(settings: KafkaSettings, tp: TopicPartition) -> int | None:
    consumer = make_consumer(settings, [])
    await consumer.start()
    try:
        offset: int | None = await consumer.committed(tp)
        return offset
    finally:
        await consumer.stop()


async def test_the_coordinator_says_how_the_last_transaction_ended(kafka: KafkaBroker) -> None:
    s = await _setup(kafka)
    out = TopicPartition(s.outputs[0], 1)
    async with admin_client(s.settings) as admin:
        client = admin._client
        assert await describe_transaction(client, s.txn_id, 10) is None  # never used
        producer = make_producer(s.settings, transactional_id=s.txn_id)
        await producer.start()
        try:
            await producer.begin_transaction()
            await (await producer.send(out.topic, b"x", partition=out.partition))
            ongoing = await describe_transaction(client, s.txn_id, 10)
            assert ongoing is not None and ongoing.state == "Ongoing" and not ongoing.committed
            assert ongoing.partitions == (out,)
            await producer.commit_transaction()
            committed = await _settled(client, s.txn_id)
            assert (committed.state, committed.committed, committed.partitions) == ("CompleteCommit", True, ())
            assert (committed.producer_id, committed.producer_epoch) == (ongoing.producer_id, ongoing.producer_epoch)
            await producer.begin_transaction()
            await (await producer.send(out.topic, b"y", partition=out.partition))
            await producer.abort_transaction()
            aborted = await _settled(client, s.txn_id)
            assert (aborted.state, aborted.committed) == ("CompleteAbort", False)
        finally:
            await producer.stop()


@pytest.mark.parametrize("commit", [False, True], ids=["abort", "commit"])
async def test_the_leftover_transaction_marks_every_output_partition_and_keeps_the_offsets(
    kafka: KafkaBroker, commit: bool,
) -> None:
    s = await _setup(kafka)
    first = make_producer(s.settings, transactional_id=s.txn_id)
    await first.start()
    try:  # a committed batch: one output, and its input offset
        async with first.transaction():
            await (await first.send(s.outputs[0], b"scored", key=b"k", partition=1))
            await first.send_offsets_to_transaction({TopicPartition(s.inputs, 2): 7}, s.group)
    finally:
        await first.stop()

    reader = make_reader(s.settings, "test")
    await reader.start()
    tps = [TopicPartition(t, p) for t in s.outputs for p in range(3)]
    try:
        before = await reader.end_offsets(tps)
        second = make_producer(s.settings, transactional_id=s.txn_id)
        await second.start()
        try:
            await end_leftover_transaction(second, s.outputs, s.group, commit=commit)
        finally:
            await second.stop()
        # The coordinator writes markers after it answers EndTxn: wait for them, 30 s at most.
        deadline = time.monotonic() + 30
        while (after := await reader.end_offsets(tps)) != {tp: before[tp] + 1 for tp in tps}:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        fetched = await reader.getmany(timeout_ms=5000)
    finally:
        await reader.stop()
    # One control record (the marker) per partition, data on none.
    assert {tp: after[tp] - before[tp] for tp in tps} == dict.fromkeys(tps, 1)
    assert [m.value for msgs in fetched.values() for m in msgs] == [b"scored"]
    assert await _committed(s.settings, TopicPartition(s.inputs, 2)) == 7
    assert await _committed(s.settings, TopicPartition(s.inputs, 0)) is None


@pytest.mark.parametrize("ended", [False, True], ids=["left-ongoing", "committed"])
async def test_a_new_producer_ends_its_predecessors_transaction_as_the_coordinator_decided(
    kafka: KafkaBroker, ended: bool, caplog: pytest.LogCaptureFixture,
) -> None:
    """A predecessor that stopped inside a transaction (no EndTxn: a crash) has it aborted;
    one whose last transaction committed keeps it. Either way the offsets the next consumer
    reads are final when ``start_exactly_once`` returns."""
    s = await _setup(kafka)
    first = make_producer(s.settings, transactional_id=s.txn_id)
    await first.start()
    try:
        async with first.transaction():
            await (await first.send(s.outputs[0], b"first", partition=0))
            await first.send_offsets_to_transaction({TopicPartition(s.inputs, 1): 5}, s.group)
        await first.begin_transaction()
        await (await first.send(s.outputs[0], b"second", partition=0))
        await first.send_offsets_to_transaction({TopicPartition(s.inputs, 1): 9}, s.group)
        if ended:
            await first.commit_transaction()
    finally:
        await first.stop()  # aiokafka's stop() ends no transaction

    second = make_producer(s.settings, transactional_id=s.txn_id)
    caplog.set_level(logging.INFO, "scorer.kafka.transactions")
    try:
        last = await start_exactly_once(s.settings, second, s.outputs, 60)
    finally:
        await second.stop()
    # Committed: PrepareCommit while the coordinator still writes its markers, then CompleteCommit.
    # Left ongoing: Ongoing, or aborted already if its timeout passed (a very slow machine).
    assert last is not None and last.committed == ended, last
    states = ("PrepareCommit", "CompleteCommit") if ended else ("Ongoing", "PrepareAbort", "CompleteAbort")
    assert last.state in states, last
    decided = "committed" if ended else "aborted"
    assert f"the last transaction of {s.txn_id!r} was {last.state}: what it left open is {decided}" in caplog.text
    assert await _committed(s.settings, TopicPartition(s.inputs, 1)) == (9 if ended else 5)
    reader = make_reader(s.settings, "test")
    await reader.start()
    try:
        tp = TopicPartition(s.outputs[0], 0)
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        fetched = await reader.getmany(timeout_ms=5000)
    finally:
        await reader.stop()
    assert [m.value for msgs in fetched.values() for m in msgs] == ([b"first", b"second"] if ended else [b"first"])


class _Coordinator:
    """A client whose DescribeTransactions answers come from ``answers`` (an exception is raised)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.asked = 0

    async def coordinator_lookup(self, kind: Any, key: str) -> int:
        return 1

    async def send(self, node: int, request: Any) -> Any:
        self.asked += 1
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        code, state = answer
        topics: list[tuple[str, list[int], dict[int, bytes]]] = [("out", [0, 2], {})]
        return type("Response", (), {"transaction_states": [(code, "t", state, 60000, 0, 42, 3, topics, {})]})()


async def test_describe_retries_what_passes_and_says_none_where_the_broker_cannot_tell() -> None:
    client: Any = _Coordinator(CoordinatorNotAvailableError(), (14, ""), (0, "PrepareCommit"))  # 14: loading
    last = await describe_transaction(client, "t", 30)
    assert last == LastTransaction("PrepareCommit", 42, 3, (TopicPartition("out", 0), TopicPartition("out", 2)))
    assert last.committed and client.asked == 3
    assert await describe_transaction(_Coordinator((105, "")), "t", 30) is None  # TRANSACTIONAL_ID_NOT_FOUND
    assert await describe_transaction(_Coordinator(IncompatibleBrokerVersion()), "t", 30) is None  # Kafka < 3.0
    with pytest.raises(TransactionalIdAuthorizationFailed):
        await describe_transaction(_Coordinator((53, "")), "t", 30)


def test_a_dead_sender_is_logged_in_one_line() -> None:
    one_line_sender_errors()
    one_line_sender_errors()  # installed once
    logger = logging.getLogger("aiokafka.producer.sender")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger.addHandler(handler)
    try:
        try:
            raise ConnectionError("Connection at 127.0.0.1:1 closed")
        except ConnectionError:
            logger.exception("Unexpected error in sender routine")
            logger.exception("something else")
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Unexpected error in sender routine: ConnectionError('Connection at 127.0.0.1:1 closed')"
    assert lines[1] == "something else" and lines[2] == "Traceback (most recent call last):"  # others untouched
    assert len(logger.filters) == 1
