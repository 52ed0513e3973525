"""The online profile job: events in, profiles out, on a plain aiokafka consumer group.

Per micro-batch (``getmany``): decode each record as the scorer does, apply it to the
store of its input partition (:mod:`scorer.profiles.updates`), produce every key the batch changed
to ``profiles.<kind>`` *in the same partition number*, wait for the broker's acks, and only
then commit the input offsets: the scorer's at-least-once discipline
(scorer/pipeline/loop.py). The profile topic is the changelog:

- killed and restarted (or a partition moved to another worker): the partition's store is
  rebuilt by reading its profile partition to the end, and consumption resumes at the
  committed offset. Records after the commit are replayed, but each key remembers the input
  offset last applied to it and skips what it has seen: nothing lost, nothing counted twice;
- a rebalance waits for the batch in flight to be produced and committed before the
  partitions go; the new owner restores them from the profile topic.

Why not faust-streaming: see docs/profiles.md (offset commits past in-flight messages under
concurrency, faust issue #606, reproduced in tests/streams/test_faust.py; and table
changelog writes that are not atomic with offset commits, so a crash double-counts).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from prometheus_client import CollectorRegistry

from scorer.config import KafkaSettings, Settings
from scorer.events.decode import DecodeFailure, EventDecoder
from scorer.events.structs import EventKind, SourceRef
from scorer.kafka import make_consumer, make_producer, make_reader, produce_batched
from scorer.profiles.schema import encode, topic_for
from scorer.profiles.store import KeyBudget, Limits, ProfileStore, StoreStats
from scorer.profiles.updates import apply

from .kafka import Handover, Out, StatsCollector, ensure_profile_topics, restore, stop_after

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    kafka: KafkaSettings
    inputs: dict[str, EventKind]  # input topic -> kind
    profile_prefix: str = "profiles."
    max_keys: int = 500_000
    limits: Limits = field(default_factory=Limits)
    max_records: int = 4096
    max_wait_ms: int = 100

    @classmethod
    def from_settings(cls, settings: Settings, *, group_id: str = "", **overrides: Any) -> WorkerSettings:
        """The scorer's Kafka and topic settings; the job's own consumer group."""
        kafka = settings.kafka.model_copy(update={"group_id": group_id or f"{settings.kafka.group_id}-profiles",
                                                  "group_instance_id": None})
        return cls(kafka, settings.topics.input_topics(settings.kinds), settings.profiles.topic_prefix,
                   **overrides)


class ProfileWorker:
    def __init__(self, settings: WorkerSettings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.budget = KeyBudget(settings.max_keys)
        self.stores: dict[TopicPartition, ProfileStore] = {}
        self.stats = {k.value: StoreStats() for k in settings.inputs.values()}
        self.inflight = asyncio.Lock()
        self._restoring = asyncio.Lock()
        self.decoder = EventDecoder()
        self.events = 0
        self.skipped = 0  # undecodable records: the scorer dead-letters them, the job only counts
        self.batches = 0
        self._stopping = asyncio.Event()
        self._consumer: Any = None
        self._producer: Any = None
        self._restorer: Any = None
        self.registry = registry or CollectorRegistry()
        self.registry.register(StatsCollector(self.stats, self.budget, {
            k.value: (lambda k=k: sum(len(s) for tp, s in self.stores.items() if self.kind(tp) is k))
            for k in settings.inputs.values()}))

    def kind(self, tp: TopicPartition) -> EventKind:
        return self.settings.inputs[tp.topic]

    def profile_topic(self, tp: TopicPartition) -> str:
        return topic_for(self.settings.profile_prefix, self.kind(tp))

    async def start(self) -> None:
        kafka = self.settings.kafka
        await ensure_profile_topics(kafka, {t: topic_for(self.settings.profile_prefix, k)
                                            for t, k in self.settings.inputs.items()})
        self._producer = make_producer(kafka)
        await self._producer.start()
        self._restorer = make_reader(kafka, "restore")
        await self._restorer.start()
        self._consumer = make_consumer(kafka, [])
        self._consumer.subscribe(list(self.settings.inputs), listener=Handover(self.inflight, self.drop, self.store_of))
        await self._consumer.start()

    async def store_of(self, tp: TopicPartition) -> ProfileStore:
        """The partition's store, rebuilt from its profile partition the first time."""
        async with self._restoring:  # one restore consumer: one partition at a time
            store = self.stores.get(tp)
            if store is None:
                store = ProfileStore(self.budget, self.settings.limits, stats=self.stats[self.kind(tp).value])
                n = await restore(self._restorer, TopicPartition(self.profile_topic(tp), tp.partition), store)
                self.stores[tp] = store
                log.info("restored %s/%d: %d keys from %d records", tp.topic, tp.partition, len(store), n)
        return store

    def drop(self, tp: TopicPartition) -> None:
        store = self.stores.pop(tp, None)
        if store is not None:
            store.clear()

    async def run(self) -> None:
        while not self._stopping.is_set():
            fetched = await self._consumer.getmany(timeout_ms=self.settings.max_wait_ms,
                                                   max_records=self.settings.max_records)
            if fetched:
                async with self.inflight:
                    await self.process(fetched)

    async def process(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        outputs: list[Out] = []
        offsets: dict[TopicPartition, int] = {}
        for tp, messages in fetched.items():
            kind, store = self.kind(tp), await self.store_of(tp)
            for m in messages:
                event = self.decoder.decode(kind, m.value, SourceRef(tp.topic, tp.partition, m.offset), m.key)
                if isinstance(event, DecodeFailure):
                    self.skipped += 1
                    continue
                apply(store, kind, event, m.offset)
                self.events += 1
            store.expire()
            topic = self.profile_topic(tp)
            outputs += [Out(topic, tp.partition, k.encode(), None if p is None else encode(p))
                        for k, p in store.changes()]
            offsets[tp] = messages[-1].offset + 1
        await produce_batched(self._producer, outputs)
        self.batches += 1
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # Partitions moved: the next owner replays from the last commit and the per-key
            # offsets skip what these profiles already contain.
            log.warning("commit failed (rebalance?): %s", exc)

    def request_stop(self) -> None:
        self._stopping.set()

    async def stop(self) -> None:
        self._stopping.set()
        await stop_after(self.inflight, self._consumer, self._restorer, self._producer)
