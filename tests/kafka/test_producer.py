"""send_batched places every record where send() would (or where it says), one batch per
partition, and sends a record larger than a whole batch on its own."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka.partitioner import murmur2

from scorer.kafka import produce_batched, send_batched
from scorer.pipeline.records import OutputRecord


@dataclass(frozen=True)
class Tombstone:  # a record without a value, as the profile worker sends for an expired key
    topic: str
    partition: int
    key: bytes
    value: None = None
    headers: tuple[tuple[str, bytes], ...] = ()


PARTITIONS = {"alerts.netflow": {0, 1, 2}, "profiles.edr": {0, 1, 2, 3, 4, 5}}


@dataclass
class FakeBatch:
    capacity: int
    records: list[tuple[bytes | None, bytes | None]] = field(default_factory=list)

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: None, headers: list[Any]) -> object:
        if len(self.records) >= self.capacity:
            return None  # full, as BatchBuilder says
        self.records.append((key, value))
        return object()

    def record_count(self) -> int:
        return len(self.records)


class FakeProducer:
    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self.batches: list[tuple[str, int, list[tuple[bytes | None, bytes | None]]]] = []
        self.singles: list[tuple[str, int, bytes | None]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return PARTITIONS[topic]

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[None]:
        self.batches.append((topic, partition, batch.records))
        return _done()

    async def send(self, topic: str, value: bytes | None, *, key: bytes | None, partition: int,
                   headers: list[Any] | None) -> asyncio.Future[None]:
        self.singles.append((topic, partition, key))
        return _done()


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


def _where(producer: FakeProducer) -> dict[bytes | None, int]:
    return {key: partition for _, partition, records in producer.batches for key, _ in records}


async def test_keys_go_where_send_puts_them_and_explicit_partitions_win() -> None:
    producer = FakeProducer()
    keyed = [OutputRecord("alerts.netflow", b"v", f"10.0.0.{i}".encode()) for i in range(50)]
    pinned = [OutputRecord("profiles.edr", b"v", f"host-{i}".encode(), partition=i % 6) for i in range(12)]
    futures = await send_batched(producer, keyed + pinned)
    await asyncio.gather(*futures)
    where = _where(producer)
    assert all(where[r.key] == (murmur2(r.key or b"") & 0x7FFFFFFF) % 3 for r in keyed)
    assert all(where[r.key] == r.partition for r in pinned)
    assert len(producer.batches) == len({(t, p) for t, p, _ in producer.batches}), "one batch per partition"


async def test_keyless_records_round_robin_and_tombstones_pass() -> None:
    producer = FakeProducer()
    await produce_batched(producer, [OutputRecord("alerts.netflow", b"v") for _ in range(6)])
    assert sorted(len(records) for _, _, records in producer.batches) == [2, 2, 2]
    await produce_batched(producer, [Tombstone("profiles.edr", 4, b"k")])
    assert producer.batches[-1] == ("profiles.edr", 4, [(b"k", None)])


async def test_each_partition_gets_its_records_in_their_order_keyed_or_not() -> None:
    producer = FakeProducer()
    records = [OutputRecord("alerts.netflow", str(i).encode(), None if i % 3 else f"h{i % 5}".encode())
               for i in range(60)]
    await produce_batched(producer, records)
    for _, _, batch in producer.batches:
        values = [int(value or b"") for _, value in batch]
        assert values == sorted(values)
    assert sorted(int(v or b"") for _, _, batch in producer.batches for _, v in batch) == list(range(60))


async def test_full_batches_are_sent_and_a_record_too_large_for_any_goes_alone() -> None:
    producer = FakeProducer(capacity=2)
    records = [OutputRecord("profiles.edr", b"v", f"k{i}".encode(), partition=0) for i in range(5)]
    await produce_batched(producer, records)
    assert [len(r) for _, _, r in producer.batches] == [2, 2, 1]
    producer = FakeProducer(capacity=0)  # nothing fits: the plain path
    await produce_batched(producer, records[:2])
    assert producer.singles == [("profiles.edr", 0, b"k0"), ("profiles.edr", 0, b"k1")]
