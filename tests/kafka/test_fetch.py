"""fetch_rows / fetch_inputs: the fetched record batches built into InputRecords without a
ConsumerRecord each give what getmany() + fetched_records give, read from a real broker:
the same records (keys, values, headers' kinds, timestamps, offsets), aborted transactions
and control batches skipped, fetches starting inside a batch, max_records cutting batches,
positions where getmany() leaves them, seeks in the middle of a fetch; and the public
getmany() where the fast path is off."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

import scorer.native
from scorer.config import KafkaSettings
from scorer.events.structs import EventKind
from scorer.kafka import fetch, make_consumer, make_producer, produce_batched
from scorer.pipeline.records import InputRecord
from scorer.pipeline.source import KIND_HEADER, fetch_inputs, fetched_records
from tests.support.kafka import KafkaBroker
from tests.support.native import use_native


@dataclass(frozen=True)
class Out:  # what produce_batched sends; a value of None is a tombstone
    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = 0


async def _write_log(settings: KafkaSettings, topic: str) -> int:
    """Several record batches on partition 0 of ``topic``: plain ones, one with kind headers,
    a null key and a tombstone, a committed and an aborted transaction. Returns how many
    records a read_committed reader sees."""
    def batch(tag: str, n: int, **extra: Any) -> list[Out]:
        return [Out(topic, f'{{"{tag}":{i}}}'.encode(), f"k{i % 4}".encode(), **extra) for i in range(n)]

    producer = make_producer(settings)
    await producer.start()
    try:
        await produce_batched(producer, batch("a", 10))
        odd = [Out(topic, b'{"nokey":1}', None, (("other", b"x"),)), Out(topic, None, b"gone")]
        await produce_batched(producer, [*batch("b", 3, headers=((KIND_HEADER, b"edr"),)), *odd])
    finally:
        await producer.stop()
    txn = make_producer(settings, transactional_id=f"{topic}-txn")
    await txn.start()
    try:
        async with txn.transaction():
            await produce_batched(txn, batch("committed", 4))
        await txn.begin_transaction()
        await produce_batched(txn, batch("aborted", 3))
        await txn.abort_transaction()
    finally:
        await txn.stop()
    producer = make_producer(settings)
    await producer.start()
    try:
        await produce_batched(producer, batch("c", 6))
    finally:
        await producer.stop()
    return 10 + 5 + 4 + 6


async def _read(consumer: AIOKafkaConsumer, kinds: dict[str, EventKind], fast: bool, tp: TopicPartition, *,
                start: int, max_records: int, seek_after: int | None, expected: int) -> tuple[list[InputRecord], int]:
    """Records from ``start`` in calls of ``max_records``; once ``seek_after`` records are
    read, a seek back to ``start`` (the rest of that fetch must be dropped). Returns the
    records and the position at the end."""
    consumer.assign([tp])
    consumer.seek(tp, start)
    got: list[InputRecord] = []
    while len(got) < expected:
        if fast:
            fetched = await fetch_inputs(consumer, kinds, timeout_ms=2000, max_records=max_records)
            built = fetch.refused(consumer) is None
            assert all((type(m) is InputRecord) is built for ms in fetched.values() for m in ms)
        else:
            fetched = await consumer.getmany(timeout_ms=2000, max_records=max_records)
        assert fetched, f"nothing more after {len(got)} of {expected} records"
        records, offsets = fetched_records(fetched, kinds)
        assert len(records) <= max_records
        assert offsets == {tp: records[-1].ref.offset + 1}
        got += records
        if seek_after is not None and len(got) >= seek_after:
            consumer.seek(tp, start)
            got.append(msgspec.structs.replace(records[0], kind=None, value=b"seek", key=None))  # a mark in both lists
            expected = len(got) + expected  # all of it again
            seek_after = None
    return got, await consumer.position(tp)


@pytest.mark.parametrize(("start", "max_records", "seek_after"),
                         [(0, 500, None), (0, 4, None), (3, 7, None), (0, 5, 12)])
async def test_fast_fetch_reads_what_getmany_reads(kafka: KafkaBroker, monkeypatch: pytest.MonkeyPatch, start: int,
                                                   max_records: int, seek_after: int | None) -> None:
    topic = f"fetch.{uuid.uuid4().hex[:10]}"
    await kafka.acreate_topic(topic, 1)
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap, client_id=topic)
    visible = await _write_log(settings, topic)
    kinds = {topic: EventKind.NETFLOW}
    tp = TopicPartition(topic, 0)
    results = []
    # The reference (getmany, InputRecords built in Python), then the fast fetch with the
    # records built in C (scorer.native._kafka.inputs, where built) and in Python.
    native = "1" if scorer.native.built("_kafka") else "0"
    for fast, crcs, builder in ((False, False, "0"), (True, False, native), (True, True, "0")):
        consumer = make_consumer(settings.model_copy(update={"check_crcs": crcs}), [], group_id=None)
        await consumer.start()
        try:
            with monkeypatch.context() as patch:
                use_native(patch, builder)
                assert fetch.refused(consumer) is None  # the installed aiokafka is the one mirrored
                # The first batch's offsets (0-9) are all visible: a start inside it skips ``start``.
                results.append(await _read(consumer, kinds, fast, tp, start=start, max_records=max_records,
                                           seek_after=seek_after, expected=visible - start))
            end = (await consumer.end_offsets([tp]))[tp]
        finally:
            await consumer.stop()
    public, fast_path, fast_crc = results
    assert fast_path == public and fast_crc == public
    records, position = public
    assert position == end  # past the last transaction's marker, as getmany() leaves it
    values = [r.value for r in records]
    assert not any(v and b"aborted" in v for v in values)
    assert sum(1 for v in values if v and b"committed" in v) == 4  # the seek comes before them
    kinds_seen = {r.value: r.kind for r in records if r.value}
    assert kinds_seen[b'{"b":0}'] == EventKind.EDR and kinds_seen[b'{"a":9}'] == EventKind.NETFLOW
    assert kinds_seen[b'{"nokey":1}'] == EventKind.NETFLOW  # a header that is not "kind"
    assert None in values and all(r.ref.timestamp_ms > 0 for r in records)
    assert records[0].ref.offset == start


async def test_public_getmany_where_the_fast_path_is_off(kafka: KafkaBroker) -> None:
    topic = f"fetch.{uuid.uuid4().hex[:10]}"
    await kafka.acreate_topic(topic, 1)
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap, client_id=topic)
    visible = await _write_log(settings, topic)
    tp = TopicPartition(topic, 0)
    # A deserializer changes what a record's value is: the public path must build them.
    consumer = make_consumer(settings, [], group_id=None, value_deserializer=lambda v: v)
    await consumer.start()
    try:
        assert fetch.refused(consumer) == "the consumer deserializes keys or values"
        records, _ = await _read(consumer, {topic: EventKind.SIEM}, True, tp, start=0, max_records=9,
                                        seek_after=None, expected=visible)
    finally:
        await consumer.stop()
    assert len(records) == visible and records[0].kind == EventKind.SIEM
    assert "not an AIOKafkaConsumer" in (fetch.refused(object()) or "")


@asynccontextmanager
async def _one_partition(kafka: KafkaBroker) -> AsyncIterator[tuple[str, Any, Any, dict[str, EventKind]]]:
    """A fresh one-partition topic, a producer, and a consumer without a group assigned to it."""
    topic = f"fetch.{uuid.uuid4().hex[:10]}"
    await kafka.acreate_topic(topic, 1)
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap, client_id=topic)
    producer = make_producer(settings)
    await producer.start()
    consumer = make_consumer(settings, [], group_id=None)
    await consumer.start()
    consumer.assign([TopicPartition(topic, 0)])
    try:
        yield topic, producer, consumer, {topic: EventKind.NETFLOW}
    finally:
        await consumer.stop()
        await producer.stop()


@pytest.mark.parametrize("hold_below", [0, 1000])
async def test_a_small_batch_holds_the_next_fetch_until_released(kafka: KafkaBroker, hold_below: int) -> None:
    """``hold_below``: a batch of fewer rows leaves the next fetch request unsent (nothing in
    flight however often the loop turns) until release_fetch; a larger one, or none held,
    sends it at the next turn. The records written meanwhile are read after the release."""
    import asyncio

    async with _one_partition(kafka) as (topic, producer, consumer, kinds):
        await produce_batched(producer, [Out(topic, b'{"n":%d}' % i) for i in range(20)])
        got = 0
        while got < 20:
            got += len(fetched_records(await fetch_inputs(consumer, kinds, timeout_ms=2000, max_records=500,
                                                          hold_below=hold_below), kinds)[0])
        fetcher = consumer._fetcher
        for _ in range(20):  # the fetch routine wakes within a turn or two when it is not held
            await asyncio.sleep(0)
        assert bool(fetcher._in_flight) is (hold_below == 0)
        await produce_batched(producer, [Out(topic, b'{"late":%d}' % i) for i in range(5)])
        fetch.release_fetch(consumer)
        late = fetched_records(await fetch_inputs(consumer, kinds, timeout_ms=5000, max_records=500), kinds)[0]
        assert [r.value for r in late][:1] == [b'{"late":0}']


async def test_a_held_fetch_waits_for_its_release_across_calls(kafka: KafkaBroker) -> None:
    """``release=False`` (the loop's, while a small batch's outputs are unacknowledged): the
    held request stays unsent through the next calls, which return nothing at their timeout
    though records are at the broker; release_fetch sends it and they are read."""
    async with _one_partition(kafka) as (topic, producer, consumer, kinds):
        await produce_batched(producer, [Out(topic, b'{"n":%d}' % i) for i in range(5)])
        got = 0
        while got < 5:
            got += len(fetched_records(await fetch_inputs(consumer, kinds, timeout_ms=2000, max_records=500,
                                                          hold_below=1000), kinds)[0])
        assert not fetch.fetch_in_flight(consumer)
        await produce_batched(producer, [Out(topic, b'{"late":%d}' % i) for i in range(3)])
        for _ in range(3):
            assert await fetch_inputs(consumer, kinds, timeout_ms=20, max_records=500, hold_below=1000,
                                      release=False) == {}
            assert not fetch.fetch_in_flight(consumer)
        fetch.release_fetch(consumer)
        late: list[bytes | None] = []
        while len(late) < 3:
            late += [r.value for r in fetched_records(await fetch_inputs(consumer, kinds, timeout_ms=5000,
                                                                         max_records=500, release=False), kinds)[0]]
        assert late == [b'{"late":%d}' % i for i in range(3)]
    assert fetch.fetch_in_flight(object())  # cannot be told: as if in flight
