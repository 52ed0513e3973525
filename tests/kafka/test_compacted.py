"""Reading a compacted topic to its end: the fetch loop stops at the end offsets of when it
started, forgets partitions unassigned meanwhile, and gives up at its deadline; the JSON
fold keeps the latest value per key, deletes on a tombstone and skips junk. The settled end
(on the real broker) waits for the transactions already written to be decided."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from aiokafka import TopicPartition

from scorer.config import KafkaSettings
from scorer.kafka import fetching, make_producer, poll_until, read_to_end, read_until, settled_end_offsets
from scorer.kafka.compacted import decode_into
from tests.support.kafka import KafkaBroker

A, B = TopicPartition("scorer.control", 0), TopicPartition("scorer.control", 1)


@dataclass
class Msg:
    offset: int
    key: bytes | None
    value: bytes | None


class FakeConsumer:
    """Each getmany() returns the next ``step`` records of every assigned partition."""

    def __init__(self, logs: Mapping[TopicPartition, list[Msg]], step: int = 2) -> None:
        self.logs = dict(logs)
        self.step = step
        self.positions = dict.fromkeys(logs, 0)
        self.fetches = 0

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.logs[tp]) for tp in tps}

    async def getmany(self, *tps: TopicPartition, timeout_ms: int, max_records: int | None = None
                      ) -> dict[TopicPartition, list[Msg]]:
        self.fetches += 1
        out = {}
        for tp, at in self.positions.items():
            if records := self.logs[tp][at:at + self.step]:
                out[tp] = records
                self.positions[tp] = at + len(records)
        return out


class State(msgspec.Struct):
    version: str


def _msg(offset: int, key: str, version: str | None) -> Msg:
    return Msg(offset, key.encode(), None if version is None else msgspec.json.encode(State(version)))


async def test_reads_every_partition_to_its_end_and_folds_the_latest_value_per_key() -> None:
    logs = {A: [_msg(0, "edr", "1"), _msg(1, "siem", "1"), _msg(2, "edr", "2"), _msg(3, "siem", None)],
            B: [_msg(0, "netflow", "3"), Msg(1, b"netflow", b"{not json")]}
    consumer = FakeConsumer(logs)
    out: dict[str, tuple[int, State]] = {}

    def fold(tp: TopicPartition, records: list[Any]) -> None:
        for m in records:
            decode_into(out, m.key, m.value, m.offset, State)

    assert await read_to_end(consumer, [A, B], fetching(consumer, fold))
    assert consumer.positions == {A: 4, B: 2} and consumer.fetches == 2
    assert out == {"edr": (2, State("2")), "netflow": (0, State("3"))}, "latest kept, tombstone deleted, junk skipped"


async def test_a_partition_unassigned_meanwhile_no_longer_counts() -> None:
    consumer = FakeConsumer({A: [_msg(i, "k", "1") for i in range(4)], B: [_msg(i, "k", "1") for i in range(40)]})

    async def fetch(timeout_ms: int) -> None:
        await consumer.getmany(timeout_ms=timeout_ms)
        consumer.positions.pop(B, None)  # revoked: a profile view drops it and its keys

    assert await read_until(consumer, {A: 4, B: 40}, fetch)
    assert consumer.positions == {A: 4}


async def test_gives_up_at_the_deadline() -> None:
    consumer = FakeConsumer({A: [_msg(i, "k", "1") for i in range(4)]}, step=0)  # never advances

    async def fetch(timeout_ms: int) -> None:
        await consumer.getmany(timeout_ms=timeout_ms)

    assert not await read_until(consumer, {A: 4}, fetch, timeout_s=0.0)


async def test_poll_until_returns_the_value_that_satisfies_or_none_once_it_stops_changing() -> None:
    values = iter([1, 2, 2, 3])

    async def probe() -> int:
        return next(values)

    assert await poll_until(probe, lambda v: v == 3, stall_s=60, every_s=0) == 3

    async def same() -> int:
        return 1

    assert await poll_until(same, lambda v: v == 3, stall_s=0, every_s=0.001) is None


async def test_settled_end_offsets_wait_for_the_open_transaction(kafka: KafkaBroker) -> None:
    topic = f"settled.{uuid.uuid4().hex[:8]}"
    await kafka.acreate_topic(topic, 1)
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap)
    tp = TopicPartition(topic, 0)
    producer = make_producer(settings, transactional_id=f"{topic}-txn")
    await producer.start()
    try:
        await producer.begin_transaction()
        for value in (b"a", b"b"):
            await producer.send_and_wait(topic, value, partition=0)
        # Undecided: the read_committed end stays before it.
        assert await settled_end_offsets(settings, [tp], stall_s=1) is None
        await producer.commit_transaction()
    finally:
        await producer.stop()
    # Right after the commit is answered, its marker may not be written yet: the settled end
    # is past it all the same (a, b, the marker).
    assert await settled_end_offsets(settings, [tp], stall_s=60) == {tp: 3}
    assert await settled_end_offsets(settings, [], stall_s=60) == {}
