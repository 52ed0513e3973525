"""One consumer-group stage of the incident job: poll a batch, turn it into outputs, write
outputs and input offsets in one transaction.

The transactional id is ``<group>-<stage>-<instance>``: a process restarted with the same
``--instance`` fences its killed predecessor and ends what it left open as the transaction
coordinator decided it (scorer.kafka.transactions), so a kill -9 at any point leaves either
a whole batch or none of it. Two live processes must
not share an instance (the later one would fence the other); give each its own, as a
StatefulSet's ordinal does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from scorer.config import IncidentSettings, KafkaSettings, Settings
from scorer.kafka import make_consumer, make_producer, make_reader
from scorer.kafka.transactions import start_exactly_once

from ..kafka import Handover, stop_after
from .kafka import Follower, Out, in_transaction

log = logging.getLogger(__name__)
T = TypeVar("T")
# Records handled between two yields to the event loop. The router and the correlator share
# one loop: a batch of a few thousand findings is a few hundred ms of CPU, and without a
# yield the other stage's transaction, already answered by the broker, waits behind it.
YIELD_EVERY = 256


class Observer(Protocol):
    def observe(self, amount: float) -> None: ...


async def paced(items: Iterable[T]) -> AsyncIterator[T]:
    """``items``, yielding to the event loop every :data:`YIELD_EVERY` of them."""
    for i, item in enumerate(items, 1):
        yield item
        if i % YIELD_EVERY == 0:
            await asyncio.sleep(0)


@dataclass(frozen=True)
class JobSettings:
    kafka: KafkaSettings
    incidents: IncidentSettings
    alert_topics: tuple[str, ...]
    group_id: str
    instance: str = "0"
    max_records: int = 4096
    max_wait_ms: int = 100
    idle_s: float = 30.0  # a partition without input this long lets wall time move its watermark

    @classmethod
    def from_settings(cls, settings: Settings, *, group_id: str = "", **overrides: Any) -> JobSettings:
        kafka = settings.kafka.model_copy(update={"group_instance_id": None})
        return cls(kafka, settings.incidents, tuple(settings.topics.alert_topic(k) for k in settings.kinds),
                   group_id or f"{settings.kafka.group_id}-incidents", **overrides)


class Stage:
    name = "stage"

    def __init__(self, settings: JobSettings, counts: dict[str, int]) -> None:
        self.settings = settings
        self.counts = counts
        self.group_id = f"{settings.group_id}-{self.name}"
        self.inflight = asyncio.Lock()
        self._stopping = asyncio.Event()
        self.consumer: Any = None
        self.producer: Any = None
        self.reader: Any = None  # group-less, for compacted topics
        self.follower: Follower | None = None  # a compacted topic followed between batches (setup())
        # Step -> histogram ("process": poll to outputs built, "commit": the transaction;
        # "records": batch size); the job passes its metrics in, none when run bare.
        self.observers: dict[str, Observer] = {}

    def topics(self) -> list[str]:
        raise NotImplementedError

    def outputs(self) -> list[str]:
        """Every topic this stage's transactions write to."""
        raise NotImplementedError

    async def setup(self) -> None:
        """Before the first poll (the producer has fenced its predecessor by then)."""

    def revoked(self, tp: TopicPartition) -> None:
        """``tp`` leaves this process."""

    async def assigned(self, tp: TopicPartition) -> None:
        """``tp`` is this process's now."""

    async def process(self, fetched: dict[TopicPartition, list[Any]]) -> tuple[list[Out], dict[TopicPartition, int]]:
        raise NotImplementedError

    async def follow(self) -> None:
        """Take in what the followed compacted topic (links, suppression rules) gained since the
        last batch: called before every batch's process()."""
        if self.follower is not None:
            await self.follower.poll()

    async def tick(self) -> list[Out]:
        """Outputs with no input (closing episodes of idle partitions)."""
        return []

    def reset(self) -> None:
        """Forget in-memory state after a batch failed to commit: it is rebuilt from Kafka."""

    async def start(self) -> None:
        kafka = self.settings.kafka.model_copy(update={"group_id": self.group_id})
        self.producer = make_producer(kafka, transactional_id=f"{self.group_id}-{self.settings.instance}")
        # Fences a killed predecessor and ends what it left open, as its coordinator decided,
        # before the changelog and the committed offsets are read.
        await start_exactly_once(kafka, self.producer, self.outputs())
        self.reader = make_reader(kafka, f"{self.name}-state")
        await self.reader.start()
        await self.setup()
        self.consumer = make_consumer(kafka, [])
        self.consumer.subscribe(self.topics(), listener=Handover(self.inflight, self.revoked, self.assigned))
        await self.consumer.start()

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            fetched = await self.consumer.getmany(timeout_ms=self.settings.max_wait_ms,
                                                  max_records=self.settings.max_records)
            async with self.inflight:
                try:
                    started = time.perf_counter()
                    await self.follow()
                    outputs, offsets = await self.process(fetched) if fetched else ([], {})
                    outputs += await self.tick()
                    if outputs or offsets:
                        built = time.perf_counter()
                        await in_transaction(self.producer, outputs, offsets, self.group_id)
                        self.counts[f"{self.name}_batches"] = self.counts.get(f"{self.name}_batches", 0) + 1
                        self._observe(process=built - started, commit=time.perf_counter() - built,
                                      records=sum(map(len, fetched.values())))
                    failures = 0
                except ProducerFenced:
                    raise  # another process took this instance id: this one must stop
                except KafkaError as exc:
                    failures += 1
                    if failures > 5:
                        raise
                    # The transaction is aborted: nothing of the batch is visible. Start again
                    # from the committed offsets with state as Kafka has it.
                    log.warning("%s: batch not committed (%r); re-reading from the committed offsets", self.name, exc)
                    self.reset()
                    assignment = self.consumer.assignment()
                    if assignment:
                        await self.consumer.seek_to_committed(*assignment)

    def _observe(self, **values: float) -> None:
        for step, value in values.items():
            if (observer := self.observers.get(step)) is not None:
                observer.observe(value)

    def request_stop(self) -> None:
        self._stopping.set()

    async def stop(self) -> None:
        self._stopping.set()
        await stop_after(self.inflight, self.consumer, self.reader, self.producer)
