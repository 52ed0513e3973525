"""Kafka plumbing of the incident job: its topics, one transaction per batch, following a
compacted topic, restoring a partition's episodes, dead letters (clients, batched producing
and reading to the end are :mod:`scorer.kafka`'s)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from scorer.config import IncidentSettings, KafkaSettings
from scorer.events.structs import RecordFailure, SourceRef
from scorer.incidents import Correlator, decode_changelog
from scorer.kafka import COMPACTED, TopicSpec, assign_from_start, ensure_topics, fetching, produce_batched, read_until
from scorer.pipeline.deadletter import dead_letter

from ..kafka import read_partition

log = logging.getLogger(__name__)


class Out(msgspec.Struct, frozen=True):
    """One record to produce (a :class:`scorer.kafka.Record`); ``value`` None is a tombstone."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None  # None: placed by key
    headers: tuple[tuple[str, bytes], ...] = ()


async def ensure_incident_topics(kafka: KafkaSettings, cfg: IncidentSettings) -> None:
    """Create the job's topics; the changelog must have the keyed topic's partition count.

    A key's episodes live in the changelog partition numbered as its keyed partition: a
    partition that moves in a rebalance takes its state along only when both agree.
    """
    counts = await ensure_topics(kafka, [
        TopicSpec(cfg.keyed_topic, cfg.partitions),
        TopicSpec(cfg.state_topic, cfg.partitions, config=COMPACTED),
        TopicSpec(cfg.links_topic, 1, config=COMPACTED),
        TopicSpec(cfg.suppressions_topic, 1, config=COMPACTED),
        TopicSpec(cfg.topic, cfg.partitions),
        TopicSpec(cfg.suppressed_topic, cfg.partitions),
        TopicSpec(cfg.dead_letter, 1),
    ])
    if counts[cfg.state_topic] != counts[cfg.keyed_topic]:
        raise RuntimeError(f"{cfg.state_topic} has {counts[cfg.state_topic]} partitions and {cfg.keyed_topic} "
                           f"{counts[cfg.keyed_topic]}: the changelog must be co-partitioned with its input")


async def in_transaction(producer: AIOKafkaProducer, outputs: list[Out], offsets: dict[TopicPartition, int],
                         group_id: str) -> None:
    """Outputs and input offsets visible together or not at all: a kill -9 anywhere leaves
    either the whole batch (records, changelog, offsets) or none of it, and the restarted
    process (same transactional id) ends what its predecessor left open (Stage.start)."""
    async with producer.transaction():
        await produce_batched(producer, outputs)
        if offsets:
            await producer.send_offsets_to_transaction(offsets, group_id)


def dead(topic: str, reason: str, message: str, record: Any) -> Out:
    """A dead letter for one input record, in the scorer's format (scorer/pipeline/deadletter.py)."""
    ref = SourceRef(record.topic, record.partition, record.offset, record.timestamp or 0)
    letter = dead_letter(RecordFailure(reason, message, ref, record.value, record.key), topic)
    return Out(letter.topic, letter.key, letter.value, None, letter.headers)


class Follower:
    """Every partition of a compacted topic, read to its end at start, then polled for news."""

    def __init__(self, reader: AIOKafkaConsumer, topic: str, apply: Callable[[bytes | None, bytes | None], None]):
        self.reader = reader
        self.topic = topic
        self.apply = apply

    def _fold(self, _: TopicPartition, records: list[Any]) -> None:
        for r in records:
            self.apply(r.key, r.value)

    async def catch_up(self) -> None:
        tps = await assign_from_start(self.reader, self.topic)
        await read_until(self.reader, await self.reader.end_offsets(tps) if tps else {},
                         fetching(self.reader, self._fold))

    async def poll(self) -> None:
        for tp, records in (await self.reader.getmany(timeout_ms=0)).items():
            self._fold(tp, records)


async def restore(reader: AIOKafkaConsumer, tp: TopicPartition, corr: Correlator) -> int:
    """Load one changelog partition into ``corr`` (the latest record per key wins)."""
    return await read_partition(reader, tp, lambda key, value: corr.load(key, decode_changelog(key, value)))
