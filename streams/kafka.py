"""Kafka plumbing of the stream jobs: co-partitioned compacted topics, restoring a
partition's state from its changelog, handing partitions over in a rebalance, the profile
worker's metrics (the clients, batched producing and reading to the end are
:mod:`scorer.kafka`'s)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from scorer.config import KafkaSettings
from scorer.kafka import COMPACTED, TopicSpec, admin_client, ensure_topics, fetching, read_until
from scorer.kafka.admin import topic_partitions
from scorer.profiles.schema import decode
from scorer.profiles.store import KeyBudget, ProfileStore, StoreStats

log = logging.getLogger(__name__)

# Compacted: the latest value per key is the state. Tombstones go after a day (a view or a
# restoring worker that is down longer than that re-reads the topic and never saw the key).
PROFILE_TOPIC_CONFIG = COMPACTED | {"delete.retention.ms": str(24 * 3600 * 1000)}


@dataclass(frozen=True)
class Out:
    """One profile record (a :class:`scorer.kafka.Record`): its partition is the input
    partition of the events it covers."""

    topic: str
    partition: int
    key: bytes
    value: bytes | None  # None: tombstone
    headers: tuple[tuple[str, bytes], ...] = ()


async def ensure_profile_topics(kafka: KafkaSettings, pairs: dict[str, str]) -> None:
    """Create each profile topic (``input -> profile``) with its input's partition count.

    Co-partitioning is what makes a partition's events and its profiles move together in a
    rebalance; an existing profile topic with another count is refused, not silently used.
    """
    wanted = {p: await _partition_count(kafka, i) for i, p in pairs.items()}
    # Another worker creating the same topic meanwhile is fine; any other refusal raises.
    counts = await ensure_topics(kafka, [TopicSpec(t, n, config=PROFILE_TOPIC_CONFIG) for t, n in wanted.items()])
    for topic, n in wanted.items():
        if counts[topic] != n:
            raise RuntimeError(f"{topic} has {counts[topic]} partitions, its input has {n}: "
                               "profiles must be co-partitioned with their events")


async def _partition_count(kafka: KafkaSettings, topic: str) -> int:
    async with admin_client(kafka) as admin:
        for _ in range(100):
            if parts := (await topic_partitions(admin, [topic])).get(topic):
                return len(parts)
            await asyncio.sleep(0.1)
    raise RuntimeError(f"input topic {topic} does not exist")


async def read_partition(consumer: AIOKafkaConsumer, tp: TopicPartition,
                         load: Callable[[str, bytes | None], None]) -> int:
    """Hand every keyed record of one changelog partition, up to its end offset now, to
    ``load`` (key, value; None is a tombstone) in order; returns how many."""
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    end = await consumer.end_offsets([tp])
    n = 0

    def fold(_: TopicPartition, records: list[Any]) -> None:
        nonlocal n
        for r in records:
            if r.offset >= end[tp] or r.key is None:
                continue
            load(r.key.decode("utf-8", "replace"), r.value)
            n += 1

    await read_until(consumer, end, fetching(consumer, fold, tp, max_records=50_000))
    return n


async def restore(consumer: AIOKafkaConsumer, tp: TopicPartition, store: ProfileStore) -> int:
    """Load every record of one profile partition into ``store``, up to its end offset now."""
    return await read_partition(consumer, tp, lambda key, value: store.load(key, None if value is None
                                                                            else decode(value)))


async def stop_after(inflight: asyncio.Lock, *clients: Any) -> None:
    """Stop a job's clients (None: never made) once the batch in flight is done."""
    async with inflight:
        for client in clients:
            if client is not None:
                await client.stop()


class Handover(ConsumerRebalanceListener):  # type: ignore[misc]
    """A job's partitions in a rebalance: one leaves only once the batch in flight (held under
    ``inflight``) is committed or aborted; one that arrives is prepared (its state restored)
    before its first batch."""

    def __init__(self, inflight: asyncio.Lock, revoked: Callable[[TopicPartition], None],
                 assigned: Callable[[TopicPartition], Awaitable[object]]) -> None:
        self.inflight = inflight
        self.revoked = revoked
        self.assigned = assigned

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.inflight:
            for tp in revoked:
                self.revoked(tp)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        for tp in sorted(assigned):
            await self.assigned(tp)


class StatsCollector:
    """Exports the stores' counters at scrape time (``streams_`` prefix)."""

    def __init__(self, stats: dict[str, StoreStats], budget: KeyBudget, keys: dict[str, Any]) -> None:
        self.stats = stats
        self.budget = budget
        self.keys = keys  # kind -> callable giving the keys held now

    def collect(self) -> Iterator[Metric]:
        updates = CounterMetricFamily("streams_profile_updates", "Key updates by outcome", labels=["kind", "outcome"])
        for kind, s in self.stats.items():
            for outcome in ("applied", "duplicates", "refused", "expired", "evicted"):
                updates.add_metric([kind, outcome], getattr(s, outcome))
        yield updates
        implausible = CounterMetricFamily(
            "streams_profile_implausible_times", "Key updates dated too far ahead to move the stream clock",
            labels=["kind"])
        for kind, s in self.stats.items():
            implausible.add_metric([kind], s.implausible)
        yield implausible
        held = GaugeMetricFamily("streams_profile_keys", "Profile keys held in memory", labels=["kind"])
        for kind, count in self.keys.items():
            held.add_metric([kind], count())
        yield held
        yield GaugeMetricFamily("streams_profile_key_budget", "Most profile keys this process may hold",
                                value=self.budget.max_keys)
