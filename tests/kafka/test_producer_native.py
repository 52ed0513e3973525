"""send_batched in C (scorer.native._kafka: placement, batches filled straight into aiokafka's
record batch builder) writes to a real broker what the Python reference writes: the same
records (keys, values, headers, tombstones) on the same partitions in the same order, batches
that fill up continued in new ones, in plain and transactional producers."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import pytest
from aiokafka import TopicPartition

import scorer.native
from scorer.config import KafkaSettings
from scorer.kafka import make_producer, make_reader, partitioner, produce_batched
from scorer.kafka import producer as batched
from scorer.kafka.compacted import fetching, read_to_end
from scorer.pipeline.records import OutputRecord
from tests.support.kafka import KafkaBroker
from tests.support.native import use_native

pytestmark = pytest.mark.skipif(not scorer.native.built("_kafka"), reason="scorer.native._kafka is not built")


@dataclass(frozen=True)
class Out:
    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None


def _records(topics: list[str]) -> list[Out]:
    keyed, keyless, other = topics
    out: list[Out] = []
    for i in range(300):
        out.append(Out(keyed, b'{"n":%d,"pad":"%s"}' % (i, b"x" * (i % 90)), f"uid-{i % 41}".encode()))
        if i % 7 == 0:
            out.append(Out(keyless, b"keyless %d" % i))
        if i % 11 == 0:
            out.append(Out(other, b"alert %d" % i, f"host-{i}".encode(), (("kind", b"edr"), ("n", b"%d" % i))))
        if i % 13 == 0:
            out.append(Out(other, None, b"gone-%d" % i, partition=i % 4))  # a tombstone, pinned
    return out


async def _written(settings: KafkaSettings, topics: list[str], partitions: int) -> list[tuple[object, ...]]:
    # read_uncommitted: a committed transaction's data is all there once the commit returned,
    # its markers (which move a read_committed reader's end) may come a moment later.
    reader = make_reader(settings, "check", isolation_level="read_uncommitted")
    await reader.start()
    got: list[tuple[object, ...]] = []
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        fetch = fetching(reader, lambda tp, ms: got.extend((tp.topic, tp.partition, m.offset, m.key, m.value,
                                                            m.headers) for m in ms))
        assert await read_to_end(reader, tps, fetch, timeout_s=60)
    finally:
        await reader.stop()
    return sorted(got, key=lambda row: (str(row[0]), row[1], row[2]))


@pytest.mark.parametrize("transactional", [False, True])
async def test_native_batches_write_what_the_reference_writes(kafka: KafkaBroker, monkeypatch: pytest.MonkeyPatch,
                                                              transactional: bool) -> None:
    assert batched._BUILDER_REFUSED is None  # the installed aiokafka's builder is the one checked
    written = []
    for native in ("0", "1"):
        prefix = f"pn{uuid.uuid4().hex[:8]}"
        topics = [f"{prefix}.scores", f"{prefix}.keyless", f"{prefix}.alerts"]
        for topic in topics:
            await kafka.acreate_topic(topic, 4)
        settings = KafkaSettings(bootstrap_servers=kafka.bootstrap, client_id=prefix)
        # Small batches: most partitions' records fill several.
        producer = make_producer(settings, transactional_id=f"{prefix}-txn" if transactional else None,
                                 max_batch_size=2048)
        await producer.start()
        with monkeypatch.context() as patch:
            use_native(patch, native)
            try:
                for part in range(3):  # three calls: round-robin and batches start again each time
                    records = _records(topics)[part * 150:(part + 1) * 150]
                    if transactional:
                        async with producer.transaction():
                            await produce_batched(producer, records)
                    else:
                        await produce_batched(producer, records)
            finally:
                await producer.stop()
        rows = await _written(settings, topics, 4)
        # Topic names differ per run: compare what is in them.
        written.append([(topics.index(str(t)), *rest) for t, *rest in rows])
    reference, native_rows = written
    assert native_rows == reference
    assert len(reference) == len(_records(["a", "b", "c"]))
    assert any(r[4] is None for r in reference) and any(r[5] for r in reference)


class Partitions:  # what _by_partition asks of a producer
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def partitions_for(self, topic: str) -> set[int]:
        self.asked.append(topic)
        return set(range(len(topic) % 5 + 1))


async def test_native_placement_is_the_reference_on_random_records(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    rng = random.Random(16)
    topics = ["a", "bb", "ccc", "dddd"]
    # Two record types mixed (their attributes read from slots and through the generic lookup).
    records = [rng.choice((Out, OutputRecord))(rng.choice(topics), b"v",
                                               None if rng.random() < 0.2 else rng.randbytes(rng.randrange(0, 40)),
                                               partition=rng.randrange(8) if rng.random() < 0.1 else None)
               for _ in range(3000)]
    placements = []
    for native in ("0", "1"):
        with monkeypatch.context() as patch:
            use_native(patch, native)
            producer = Partitions()
            placements.append((await batched._by_partition(producer, records), producer.asked))
    (reference, asked), (native_groups, native_asked) = placements
    assert list(native_groups.items()) == list(reference.items())  # groups and their order, rows and theirs
    assert native_asked == asked  # each topic asked for once, in first-seen order


@pytest.mark.parametrize("transactional", [False, True])
def test_batch_writes_aiokafkas_bytes(transactional: bool) -> None:
    import random

    from aiokafka.producer.message_accumulator import BatchBuilder

    kafka = scorer.native.built_module("_kafka")
    assert kafka is not None
    rng = random.Random(5)
    records = [OutputRecord("t", rng.randbytes(rng.randrange(0, 300)),
                            None if i % 7 == 0 else rng.randbytes(rng.randrange(0, 30)),
                            (("kind", b"edr"), ("x", rng.randbytes(5))) if i % 11 == 0 else ()) for i in range(400)]
    at = 1796489595726  # one timestamp for both: aiokafka's is per append, ours per fill
    start = 0
    while start < len(records):  # batch after batch, each filled until a record does not fit
        reference, ours = BatchBuilder(16384, 0, is_transactional=transactional), kafka.Batch(16384, transactional)
        appended = 0
        for r in records[start:]:
            if reference.append(timestamp=at, key=r.key, value=r.value, headers=list(r.headers)) is None:
                break
            appended += 1
        assert ours.fill(records, start, at) == appended > 0
        assert ours.closed() == (start + appended < len(records)) and ours.record_count() == appended
        for batch in (reference, ours):
            batch._set_producer_state(4242, 3, 17 + start)
        assert bytes(ours._build()) == bytes(reference._build())
        assert ours.append(timestamp=None, key=None, value=b"v", headers=[]) is None  # send() starts another
        start += appended


async def test_placement_ends_when_metadata_updates_keep_emptying_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ask starts a new, empty table (a metadata update during each wait): the native
    placement gives up after PLACE_ROUNDS and the reference places the batch, as it would."""
    records = [OutputRecord(topic, b"v", bytes([i])) for i, topic in enumerate(["a", "bb", "a", "ccc"] * 5)]
    tables: list[dict[str, list[int]]] = []

    def fresh_table(producer: object) -> dict[str, list[int]]:
        tables.append({})
        return tables[-1]

    use_native(monkeypatch, "1")
    monkeypatch.setattr(batched, "known_partitions", fresh_table)
    monkeypatch.setattr(partitioner, "known_partitions", fresh_table)
    placed = await asyncio.wait_for(batched._by_partition(Partitions(), records), 60)  # not forever
    use_native(monkeypatch, "0")
    assert list(placed.items()) == list((await batched._by_partition(Partitions(), records)).items())
    assert len(tables) > batched.PLACE_ROUNDS
