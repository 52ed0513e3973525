"""Producing many records at once: one record batch per (topic, partition), acks awaited together.

A per-record ``send()`` costs tens of microseconds of Python per message; filling record
batches directly costs a fraction of that: written in C where built (``scorer.native._kafka``:
placement, batches), else aiokafka's BatchBuilder. A record goes to its own ``partition``
when it names one (the profile worker writes each profile next to its events), else where
``send()`` would put it: by key with Kafka's default partitioner (murmur2), keyless ones
round-robin.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder, MessageAccumulator, MessageBatch

import scorer.native
from scorer.kafka.fetch import private_refusal
from scorer.kafka.partitioner import known_partitions, partitions_of, partitions_via

log = logging.getLogger(__name__)


class Record(Protocol):
    """What the producer needs of a record (``scorer.pipeline.records.OutputRecord`` is one)."""

    @property
    def topic(self) -> str: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...  # None: a tombstone
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...
    @property
    def partition(self) -> int | None: ...  # None: placed by key


async def produce_batched(producer: AIOKafkaProducer, records: Sequence[Record]) -> None:
    """Send every record and wait until the broker acknowledged all of them."""
    await asyncio.gather(*await send_batched(producer, records))


async def send_batched(producer: AIOKafkaProducer, records: Sequence[Record]) -> list[asyncio.Future[Any]]:
    """Hand every record to the producer; returns the delivery futures (acks) to await."""
    if not records:
        return []
    futures: list[asyncio.Future[Any]] = []
    for (topic, partition), rows in (await _by_partition(producer, records)).items():
        batch = _new_batch(producer)
        done = 0
        while True:
            done += _append(batch, rows, done)
            if done == len(rows):
                break
            if batch.record_count():  # full: sent, the rest goes on in a new batch
                futures.append(await producer.send_batch(batch, topic, partition=partition))
            else:  # larger than a whole batch: the plain path splits nothing, it just sends
                r = rows[done]
                futures.append(await producer.send(topic, r.value, key=r.key, partition=partition,
                                                   headers=list(r.headers) or None))
                done += 1
            batch = _new_batch(producer)
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


# The aiokafka code that scorer.native._kafka.Batch stands in for (a BatchBuilder made by the
# accumulator, as the accumulator and the sender use it) and that _append() fills directly.
_BUILDER = (BatchBuilder.__init__, BatchBuilder.append, BatchBuilder.record_count, BatchBuilder.close,
            BatchBuilder.closed, BatchBuilder.size, BatchBuilder._build, BatchBuilder._set_producer_state,
            MessageAccumulator.create_builder, MessageBatch.append, MessageBatch.set_producer_state,
            MessageBatch.get_data_buffer, MessageBatch.is_empty, MessageBatch.remaining_linger)
_BUILDER_KNOWN = {"0.14.0": "4ceb83a3312bcf46"}
_BUILDER_REFUSED = private_refusal("writing record batches directly", _BUILDER, _BUILDER_KNOWN)
if _BUILDER_REFUSED is not None:
    log.info("record batches built through aiokafka's BatchBuilder: %s", _BUILDER_REFUSED)


def _new_batch(producer: AIOKafkaProducer) -> Any:
    """``producer.create_batch()``, written in C (``scorer.native._kafka.Batch``: the same bytes
    but for one timestamp per fill, without aiokafka's builder call per record and its table
    CRC32C) where the producer compresses nothing and serializes nothing."""
    kafka = scorer.native.module("_kafka")
    if (kafka is None or _BUILDER_REFUSED is not None or not isinstance(producer, AIOKafkaProducer)
            or producer._message_accumulator._compression_type
            or producer._key_serializer is not None or producer._value_serializer is not None):
        return producer.create_batch()
    accumulator = producer._message_accumulator
    txn = accumulator._txn_manager
    return kafka.Batch(accumulator._batch_size, txn is not None and txn.transactional_id is not None)


def _append(batch: Any, rows: list[Record], start: int) -> int:
    """How many of ``rows[start:]`` go into ``batch`` before it is full (it is closed then).

    A ``scorer.native._kafka.Batch`` fills itself. Into an aiokafka BatchBuilder: in C
    (``scorer.native._kafka.fill``) straight into its record batch builder, without
    ``BatchBuilder.append()``'s two Python calls and keyword arguments per record (~0.3 µs);
    its own ``append()`` where the builder is not the one checked."""
    kafka = scorer.native.module("_kafka")
    if kafka is not None and type(batch) is kafka.Batch:
        filled: int = batch.fill(rows, start)
        return filled
    if (kafka is None or _BUILDER_REFUSED is not None or type(batch) is not BatchBuilder or batch._closed
            or batch._key_serializer is not None or batch._value_serializer is not None):
        return _append_each(batch, rows, start)
    appended: int = kafka.fill(batch._builder.append, rows, start, batch._relative_offset)
    batch._relative_offset += appended
    if start + appended < len(rows):
        batch.close()
    return appended


def _append_each(batch: Any, rows: list[Record], start: int) -> int:
    for appended, r in enumerate(itertools.islice(rows, start, None)):
        # A shared empty list for the common record without headers (aiokafka's builder
        # takes a list and only reads it): no list per record.
        headers = list(r.headers) if r.headers else _NO_HEADERS
        if batch.append(key=r.key, value=r.value, timestamp=None, headers=headers) is None:
            return appended
    return len(rows) - start


_NO_HEADERS: list[tuple[str, bytes]] = []
# Rounds of asking for the topics the placement lacks before the reference path places the
# batch (each round is a metadata round trip; a new table each update may undo one).
PLACE_ROUNDS = 3


async def _by_partition(producer: AIOKafkaProducer, records: Sequence[Record]) -> dict[tuple[str, int], list[Record]]:
    """The records per (topic, partition), in their order; the groups in the order of their
    first record. In C where built (``scorer.native._kafka.place``: one pass, ~0.5 µs a record
    less than the two Python loops of the reference below)."""
    kafka = scorer.native.module("_kafka")
    if kafka is None:
        return await _by_partition_each(producer, records)
    placed = kafka.place(records, known_partitions(producer))
    for _ in range(PLACE_ROUNDS):
        if not isinstance(placed, list):
            break
        for topic in placed:  # the topics whose partitions it needs (the first batch to a topic)
            await partitions_via(producer, topic)
        # Again with the table current now: a metadata update while asking starts a new one.
        placed = kafka.place(records, known_partitions(producer))
    if isinstance(placed, list):
        # Metadata updates kept emptying the table while several topics were asked for: the
        # reference places every record from the partitions it asks for itself, in this call.
        return await _by_partition_each(producer, records)
    by_partition: dict[tuple[str, int], list[Record]] = placed
    return by_partition


async def _by_partition_each(producer: AIOKafkaProducer, records: Sequence[Record]
                             ) -> dict[tuple[str, int], list[Record]]:
    out: dict[tuple[str, int], list[Record]] = {}
    for r, partition in zip(records, await _placement(producer, records), strict=True):
        rows = out.get((r.topic, partition))
        if rows is None:
            rows = out[(r.topic, partition)] = []
        rows.append(r)
    return out


async def _placement(producer: AIOKafkaProducer, records: Sequence[Record]) -> list[int]:
    """The partition of every record."""
    placement = [0] * len(records)
    partitions: dict[str, list[int]] = {}  # this call's, all from one metadata version
    keyed: dict[int, list[int]] = {}  # partition count -> rows (one hash pass per count)
    for i, r in enumerate(records):
        if r.partition is not None:
            placement[i] = r.partition
            continue
        parts = partitions.get(r.topic)
        if parts is None:
            parts = partitions[r.topic] = await partitions_via(producer, r.topic)
        if r.key is None:
            placement[i] = parts[i % len(parts)]
        else:
            keyed.setdefault(len(parts), []).append(i)
    for count, rows in keyed.items():
        index = partitions_of([records[i].key or b"" for i in rows], count)
        for i, j in zip(rows, index, strict=True):
            placement[i] = partitions[records[i].topic][j]
    return placement
