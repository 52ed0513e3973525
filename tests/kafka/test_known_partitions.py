"""The producer's partitions per topic are kept between batches (no partitions_for, no second
place() per batch) and follow its cluster metadata: a topic that grew partitions gets its
records where send() puts them, on the new partitions too, after the next metadata update."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions
from aiokafka.partitioner import murmur2

import scorer.native
from scorer.config import KafkaSettings
from scorer.kafka import make_producer, make_reader, produce_batched
from scorer.kafka.compacted import fetching, read_to_end
from scorer.kafka.partitioner import known_partitions
from scorer.pipeline.records import OutputRecord
from tests.support.kafka import KafkaBroker
from tests.support.native import use_native

NATIVE = ["0", "1"] if scorer.native.built("_kafka") else ["0"]


async def _placed(settings: KafkaSettings, topic: str, partitions: int) -> dict[bytes, int]:
    """Each record's value -> the partition it was written to."""
    reader = make_reader(settings, "check", isolation_level="read_uncommitted")
    await reader.start()
    got: dict[bytes, int] = {}
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        fetch = fetching(reader, lambda tp, ms: got.update((m.value, tp.partition) for m in ms))
        assert await read_to_end(reader, tps, fetch, timeout_s=60)
    finally:
        await reader.stop()
    return got


def _where_send_puts(key: bytes | None, partitions: int) -> int:
    assert key is not None
    placed: int = (murmur2(key) & 0x7FFFFFFF) % partitions
    return placed


@pytest.mark.parametrize("native", NATIVE)
async def test_known_partitions_follow_the_metadata(kafka: KafkaBroker, monkeypatch: pytest.MonkeyPatch,
                                                   native: str) -> None:
    use_native(monkeypatch, native)
    topic = f"kp{uuid.uuid4().hex[:8]}.out"
    await kafka.acreate_topic(topic, 2)
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap)
    producer = make_producer(settings)
    await producer.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    updates: list[object] = []  # the producer's metadata updates, each of which starts a new table
    producer.client.cluster.add_listener(updates.append)
    asked: list[str] = []
    ask = producer.partitions_for

    async def counted(name: str) -> Any:
        asked.append(name)
        return await ask(name)

    monkeypatch.setattr(producer, "partitions_for", counted)
    try:
        first = [OutputRecord(topic, b"first-%d" % i, b"key-%d" % i) for i in range(100)]
        await produce_batched(producer, first)
        # Kept, not asked for again, by a batch during which the metadata did not change (a new
        # topic's first sends may meet "not leader" and update it, which rightly starts a new table).
        # The table must hold the topic before the batch: one emptied by an update at the end of
        # the last batch is filled during this one (by asking), and would look kept after it.
        while True:
            seen, table, asks = len(updates), known_partitions(producer), len(asked)
            held = topic in table
            await produce_batched(producer, first[:10])
            if len(updates) == seen and held:
                break
        assert known_partitions(producer) is table and table == {topic: [0, 1]} and len(asked) == asks

        await admin.create_partitions({topic: NewPartitions(total_count=4)})
        # Metadata updates until the producer's cluster sees the new partitions with leaders
        # (the broker applies the change asynchronously); each update starts an empty table.
        cluster = producer.client.cluster
        while any(cluster.leader_for_partition(TopicPartition(topic, p)) in (None, -1) for p in range(4)):
            await producer.client.force_metadata_update()
        assert known_partitions(producer) == {}

        # Placed with the 4 partitions (the old table's 2 would put none on 2 and 3).
        second = [OutputRecord(topic, b"second-%d" % i, b"key-%d" % i) for i in range(100)]
        await produce_batched(producer, second)
    finally:
        await admin.close()
        await producer.stop()

    placed = await _placed(settings, topic, 4)
    assert {placed[r.value] for r in first} == {0, 1}
    assert all(placed[r.value] == _where_send_puts(r.key, 2) for r in first)
    assert all(placed[r.value] == _where_send_puts(r.key, 4) for r in second)
    assert {placed[r.value] for r in second} == {0, 1, 2, 3}  # the new partitions are used
