"""Kafka plumbing of the profile worker: co-partitioned compacted topics, restoring a
partition's state from its profile records, producing to explicit partitions, metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from scorer.config import KafkaSettings
from scorer.pipeline.kafka_io import security_options
from scorer.profiles.schema import decode
from streams.store import KeyBudget, ProfileStore, StoreStats

log = logging.getLogger(__name__)

# Compacted: the latest value per key is the state. Tombstones go after a day (a view or a
# restoring worker that is down longer than that re-reads the topic and never saw the key).
PROFILE_TOPIC_CONFIG = {"cleanup.policy": "compact", "delete.retention.ms": str(24 * 3600 * 1000),
                        "min.cleanable.dirty.ratio": "0.1", "segment.ms": str(3600 * 1000)}


@dataclass(frozen=True)
class Out:
    """One profile record: its partition is the input partition of the events it covers."""

    topic: str
    partition: int
    key: bytes
    value: bytes | None  # None: tombstone


async def ensure_profile_topics(kafka: KafkaSettings, pairs: dict[str, str]) -> None:
    """Create each profile topic (``input -> profile``) with its input's partition count.

    Co-partitioning is what makes a partition's events and its profiles move together in a
    rebalance; an existing profile topic with another count is refused, not silently used.
    """
    admin = AIOKafkaAdminClient(**security_options(kafka))
    await admin.start()
    try:
        wanted = {p: await _partition_count(admin, i) for i, p in pairs.items()}
        existing = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(list(wanted))
                    if t.get("error_code", 0) == 0}
        for topic, n in wanted.items():
            if topic in existing and existing[topic] != n:
                raise RuntimeError(f"{topic} has {existing[topic]} partitions, its input has {n}: "
                                   "profiles must be co-partitioned with their events")
        missing = [NewTopic(t, n, 1, topic_configs=PROFILE_TOPIC_CONFIG) for t, n in wanted.items()
                   if t not in existing]
        if missing:
            response = await admin.create_topics(missing)
            for topic, code, *rest in getattr(response, "topic_errors", []):
                if code not in (0, TopicAlreadyExistsError.errno):  # another worker may have won
                    raise RuntimeError(f"cannot create profile topic {topic}: error {code} {rest}")
            for topic in (t.name for t in missing):
                await _partition_count(admin, topic)  # creation is asynchronous: wait for it
    finally:
        await admin.close()


async def _partition_count(admin: AIOKafkaAdminClient, topic: str) -> int:
    for _ in range(100):
        (described,) = await admin.describe_topics([topic])
        if described.get("error_code", 0) == 0 and described["partitions"]:
            return len(described["partitions"])
        await asyncio.sleep(0.1)
    raise RuntimeError(f"input topic {topic} does not exist")


async def restore(consumer: AIOKafkaConsumer, tp: TopicPartition, store: ProfileStore) -> int:
    """Load every record of one profile partition into ``store``, up to its end offset now."""
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    end = (await consumer.end_offsets([tp]))[tp]
    n = 0
    while await consumer.position(tp) < end:
        for records in (await consumer.getmany(tp, timeout_ms=200, max_records=50_000)).values():
            for r in records:
                if r.offset >= end:
                    break
                store.load(r.key.decode("utf-8", "replace"), None if r.value is None else decode(r.value))
                n += 1
    return n


async def produce(producer: AIOKafkaProducer, records: Iterable[Out]) -> int:
    """Send every record to its own partition (one batch builder each); wait for all acks."""
    futures: list[Any] = []
    batches: dict[tuple[str, int], Any] = {}
    n = 0
    for r in records:
        n += 1
        where = (r.topic, r.partition)
        batch = batches.get(where) or batches.setdefault(where, producer.create_batch())
        if batch.append(key=r.key, value=r.value, timestamp=None) is None:
            futures.append(await producer.send_batch(batch, r.topic, partition=r.partition))
            batch = batches[where] = producer.create_batch()
            if batch.append(key=r.key, value=r.value, timestamp=None) is None:  # larger than a batch
                futures.append(await producer.send(r.topic, r.value, key=r.key, partition=r.partition))
                del batches[where]
    for (topic, partition), batch in batches.items():
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*futures)
    return n


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
