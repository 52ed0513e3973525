"""Kafka in: what the consumer returned -> :class:`InputRecord` values, and the offsets to
commit once the batch is delivered.

:func:`fetch_inputs` is the scoring loop's ``getmany()``: the fetched record batches built
into InputRecords directly (:mod:`scorer.kafka.fetch`), or aiokafka's ConsumerRecords where
that fast path is off; :func:`fetched_records` takes either.

A record's kind is its topic's (``events.<kind>``), unless a ``kind`` header names another:
one topic may then carry several kinds. A kind nobody scores is decoded as ``unknown_kind``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition

import scorer.native
from scorer.events.decode import parse_kind
from scorer.events.structs import EventKind
from scorer.kafka.fetch import fetch_rows
from scorer.pipeline.records import InputRecord

KIND_HEADER = "kind"
# A scoring-loop batch smaller than this sends the next fetch request only once its outputs are
# acknowledged (scorer.pipeline.sink.Sink.fetch_after_acks): at a light load the next records
# are not at the broker yet, and aiokafka builds the request in Python (~0.1-0.2 ms), which
# would otherwise run inside the batch's scoring or beside its produce round trip
# (docs/benchmarks.md sections 36 and 46). From this size on the request goes at once, so that
# the next records arrive while this batch is scored.
HOLD_FETCH_BELOW = 256


def input_record(
    kind: EventKind | None, value: bytes | None, key: bytes | None,
    topic: str, partition: int, offset: int, timestamp_ms: int = 0,
) -> InputRecord:
    return InputRecord(kind, value, key, topic, partition, offset, timestamp_ms)


async def fetch_inputs(
    consumer: Any, kind_of_topic: Mapping[str, EventKind], *, timeout_ms: int, max_records: int, hold_below: int = 0,
    release: bool = True,
) -> dict[TopicPartition, list[Any]]:
    """``consumer.getmany()``, each partition's records as InputRecords where the fast fetch
    runs (else ConsumerRecords): for :func:`fetched_records`. ``hold_below``: see
    :data:`HOLD_FETCH_BELOW`; ``release``: :func:`scorer.kafka.fetch.fetch_rows`'s."""
    def build(topic: str, partition: int) -> Callable[[Iterable[Any]], list[InputRecord]]:
        return _inputs_of(topic, partition, kind_of_topic.get(topic))

    return await fetch_rows(consumer, build, timeout_ms=timeout_ms, max_records=max_records, hold_below=hold_below,
                            release=release)


def fetched_records(
    fetched: Mapping[TopicPartition, Sequence[Any]], kind_of_topic: Mapping[str, EventKind],
) -> tuple[list[InputRecord], dict[TopicPartition, int]]:
    """The records of one ``getmany()`` in partition order, and per partition the offset
    after its last record (what to commit when they are all delivered)."""
    records: list[InputRecord] = []
    offsets: dict[TopicPartition, int] = {}
    for tp, messages in fetched.items():
        built = type(messages[0]) is InputRecord  # by fetch_inputs
        records += messages if built else _inputs(tp.topic, tp.partition, kind_of_topic.get(tp.topic), messages)
        offsets[tp] = messages[-1].offset + 1  # InputRecord and ConsumerRecord alike
    return records, offsets


def _inputs(topic: str, partition: int, topic_kind: EventKind | None, messages: Iterable[Any]) -> list[InputRecord]:
    """InputRecords of one partition's records (ConsumerRecords, or the records of a fetched
    batch: both have offset, timestamp, key, value and headers)."""
    return _inputs_of(topic, partition, topic_kind)(messages)


def _inputs_of(
    topic: str, partition: int, topic_kind: EventKind | None,
) -> Callable[[Iterable[Any]], list[InputRecord]]:
    """:func:`_inputs` of one partition, for its record batches one after another: in C where
    built (``scorer.native._kafka.inputs``, looked up once: the attributes read through their
    descriptors, the record made by vectorcall), else the comprehension below, the reference."""
    kafka = scorer.native.module("_kafka")
    if kafka is not None:
        inputs = kafka.inputs
        return lambda messages: inputs(messages, topic, partition, topic_kind, _kind, InputRecord)

    def reference(messages: Iterable[Any]) -> list[InputRecord]:
        # A comprehension, no call per record: 20% less than a generator of input_record()
        # (0.17 against 0.21 us per record, when a record was two structs).
        return [InputRecord(_kind(m.headers, topic_kind) if m.headers else topic_kind, m.value, m.key,
                            topic, partition, m.offset, m.timestamp) for m in messages]
    return reference


def _kind(headers: Sequence[tuple[str, bytes]] | None, topic_kind: EventKind | None) -> EventKind | None:
    for name, value in headers or ():
        if name == KIND_HEADER:
            return parse_kind(value.decode("utf-8", "replace"))
    return topic_kind
