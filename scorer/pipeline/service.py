"""The Kafka scoring loop: getmany micro-batches in, alerts/dead letters out, then commit.

Offsets are committed only after every output of the batch is acknowledged by the broker
(at-least-once), or sent inside the producer's transaction (exactly-once mode). A batch is
never split across a model swap or a rebalance: the rebalance listener waits for the batches
in flight to be committed before partitions move to another process.

Pipelining (at-least-once mode): while batch N waits for its acks and its commit, batch
N+1 is already fetched and scored. Commits stay in batch order (each delivery awaits its
predecessor), and at most ``batch.max_inflight`` batches are unacknowledged, which bounds
memory. Waiting on the broker no longer idles the CPU between batches.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from scorer.config import Settings
from scorer.errors import ScorerError
from scorer.events.decode import parse_kind
from scorer.events.structs import EventKind
from scorer.kafka import TopicSpec, ensure_topics, make_consumer, make_producer, produce_batched, send_batched
from scorer.pipeline.outcome import BatchOutcome
from scorer.pipeline.records import InputRecord, OutputRecord
from scorer.pipeline.scoring import BatchScorer, input_record
from scorer.service.metrics import ScorerMetrics

log = logging.getLogger(__name__)
KIND_HEADER = "kind"


class _WaitForBatch(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: ScorerService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # Let the batches in flight finish and commit while we still own their partitions.
        async with self.service.inflight:
            await self.service.drain()
        for listener in self.service.partition_listeners:  # e.g. the profile view drops theirs
            await listener.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("assigned %s", sorted(f"{tp.topic}/{tp.partition}" for tp in assigned))
        for listener in self.service.partition_listeners:  # awaited: e.g. profiles load before scoring
            await listener.on_partitions_assigned(assigned)


class ScorerService:
    def __init__(self, settings: Settings, scorer: BatchScorer, metrics: ScorerMetrics) -> None:
        self.settings = settings
        self.scorer = scorer
        self.metrics = metrics
        self.kind_of_topic = settings.topics.input_topics(settings.kinds)
        self.inflight = asyncio.Lock()  # held while a batch is being scored and handed over
        self._deliveries: collections.deque[asyncio.Task[None]] = collections.deque()
        self._uncommitted: dict[TopicPartition, int] = {}
        self._committer: asyncio.Task[None] | None = None
        self.batches = 0
        self._stopping = asyncio.Event()
        self._consumer: Any = None
        self._producer: Any = None
        self._json = msgspec.json.Encoder()
        self._started = False
        self.paused = False  # consumption held during a Triton outage (pause mode)
        # Extension points for the control plane (model lifecycle) and observers:
        # ``between_batches`` run while no batch is in flight (model swaps happen here);
        # ``output_hooks`` add records (e.g. shadow scores) produced and committed with the batch.
        self.between_batches: list[Callable[[], Awaitable[None]]] = []
        self.output_hooks: list[Callable[[BatchOutcome], list[OutputRecord]]] = []
        # ``partition_listeners`` hear each rebalance after the batches in flight are committed.
        self.partition_listeners: list[ConsumerRebalanceListener] = []
        scorer.collect_scores = settings.topics.scores is not None

    @property
    def ready(self) -> bool:
        """Consuming and scoring: not while starting, stopping, or paused for a Triton outage."""
        return self._started and not self._stopping.is_set() and not self.paused

    async def start(self) -> None:
        kafka = self.settings.kafka
        topics = self.settings.topics
        outputs = [topics.alert_topic(k) for k in self.settings.kinds] + [topics.dead_letter]
        # So consumers can subscribe before the first alert; a broker that refuses CREATE is
        # logged, not fatal (the topics may be provisioned elsewhere).
        await ensure_topics(kafka, [TopicSpec(t) for t in outputs + ([topics.scores] if topics.scores else [])],
                            refused="warn")
        txn_id = f"{kafka.group_id}-{kafka.client_id}" if kafka.transactional else None
        self._producer = make_producer(kafka, transactional_id=txn_id)
        await self._producer.start()
        self._consumer = make_consumer(kafka, [])
        self._consumer.subscribe(list(self.kind_of_topic), listener=_WaitForBatch(self))
        await self._consumer.start()
        self._started = True

    async def drain(self) -> None:
        """Wait until every batch handed to the producer is acknowledged and committed."""
        while self._deliveries:
            await self._deliveries.popleft()
        while self._committer is not None and not self._committer.done():
            await self._committer

    async def stop(self) -> None:
        self._stopping.set()
        async with self.inflight:
            try:
                await self.drain()
            except Exception as exc:  # stopping anyway; the batch stays uncommitted and is re-read
                log.warning("a batch was not delivered before stop: %s", exc)
            if self._consumer is not None:
                await self._consumer.stop()
            if self._producer is not None:
                await self._producer.stop()
        self._started = False

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        batch = self.settings.batch
        while not self._stopping.is_set():
            for hook in self.between_batches:
                await hook()
            fetched = await self._consumer.getmany(timeout_ms=batch.max_wait_ms or 1, max_records=batch.max_records)
            if not fetched:
                continue
            received = time.perf_counter()
            async with self.inflight:
                await self._process(fetched, received)
            # Reap finished deliveries (surfacing their errors) and bound the pipeline depth.
            while self._deliveries and (
                self._deliveries[0].done() or len(self._deliveries) >= self.settings.batch.max_inflight
            ):
                await self._deliveries.popleft()
        await self.drain()

    async def _process(self, fetched: dict[TopicPartition, list[Any]], received: float) -> None:
        records: list[InputRecord] = []
        offsets: dict[TopicPartition, int] = {}
        for tp, messages in fetched.items():
            topic_kind = self.kind_of_topic.get(tp.topic)
            records.extend(
                input_record(_kind(m.headers, topic_kind) if m.headers else topic_kind, m.value, m.key,
                             tp.topic, tp.partition, m.offset, m.timestamp)
                for m in messages
            )
            offsets[tp] = messages[-1].offset + 1
        outcome = await self._score(records)
        outputs = outcome.alerts + outcome.dead_letters + self._score_records(outcome)
        for output_hook in self.output_hooks:
            outputs.extend(output_hook(outcome))
        t_produce = time.perf_counter()
        if self.settings.kafka.transactional:
            await self._deliver_transaction(outputs, offsets)
            done = time.perf_counter()
            self._account(outcome, len(records), done - received, done - t_produce)
            return
        acks = await send_batched(self._producer, outputs)
        previous = self._deliveries[-1] if self._deliveries else None
        self._deliveries.append(asyncio.create_task(
            self._finish(previous, acks, offsets, outcome, len(records), received, t_produce)
        ))

    async def _finish(
        self, previous: asyncio.Task[None] | None, acks: list[Any], offsets: dict[TopicPartition, int],
        outcome: BatchOutcome, n: int, received: float, t_produce: float,
    ) -> None:
        """Acks of this batch, then (in batch order) its offsets and accounting."""
        await asyncio.gather(*acks)
        acked = time.perf_counter()
        if previous is not None:
            await previous
        # Offsets only ever move past batches whose outputs are all acknowledged. Commits are
        # coalesced: while one is on the wire, later batches' offsets queue up for the next,
        # so a slow commit round trip never holds scoring or alert delivery back.
        self._uncommitted.update(offsets)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_pending())
        self._account(outcome, n, acked - received, acked - t_produce)

    async def _commit_pending(self) -> None:
        while self._uncommitted:
            offsets, self._uncommitted = self._uncommitted, {}
            try:
                await self._consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError, KafkaError) as exc:
                log.warning("offsets not committed (%s); those batches will be re-scored", exc)

    async def _score(self, records: Sequence[InputRecord]) -> BatchOutcome:
        """Score a batch; while the failure is one that passes, hold consumption and retry.

        A ``retriable`` failure (Triton down, or not serving the version yet) holds the
        batch, uncommitted, and retries with backoff until a backend scores it: never drop
        a batch. Any other failure would fail every retry alike, and holding the batch would
        also hold the model switch that could fix it (installed only between batches): it
        propagates and stops the service with the batch uncommitted, so nothing is lost.
        """
        delay = 0.2
        try:
            while True:
                try:
                    outcome = await self.scorer.score(records)
                except ScorerError as exc:
                    if not exc.retriable:
                        raise
                    if not self.paused:
                        log.warning("inference failed, pausing consumption: %s", exc)
                        self._consumer.pause(*self._consumer.assignment())
                        self.metrics.paused.set(1)
                        self.paused = True
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                else:
                    if self.paused:
                        log.info("inference backend back, consumption resumed")
                    return outcome
        finally:
            if self.paused:
                self._consumer.resume(*self._consumer.paused())
                self.metrics.paused.set(0)
                self.paused = False

    async def _deliver_transaction(self, outputs: list[OutputRecord], offsets: dict[TopicPartition, int]) -> None:
        # One transaction per batch: outputs and offsets become visible together or not at all.
        async with self._producer.transaction():
            await produce_batched(self._producer, outputs)
            await self._producer.send_offsets_to_transaction(offsets, self.settings.kafka.group_id)

    def _score_records(self, outcome: BatchOutcome) -> list[OutputRecord]:
        topic = self.settings.topics.scores
        if not topic:
            return []
        scores = outcome.scores
        if not scores:
            return []
        # One encoder call for the batch: JSON escapes newlines inside strings, so the
        # lines are exactly the records.
        lines = self._json.encode_lines(scores)[:-1].split(b"\n")
        return [OutputRecord(topic, line, s.uid.encode()) for s, line in zip(scores, lines, strict=True)]

    def _account(self, outcome: BatchOutcome, n: int, latency: float, produce_s: float) -> None:
        m = self.metrics
        self.batches += 1
        for kind, count in outcome.consumed.items():
            m.count_consumed(kind, count)
        for (kind, backend), count in outcome.scored.items():
            m.count_scored(kind, backend, count)
        for failure in outcome.failures:
            m.count_dead_letter(failure.kind or "unknown", failure.reason)
        for (kind, severity), count in outcome.alert_counts.items():
            m.alerts.labels(kind, severity).inc(count)
        for level, count in outcome.rule_hits.items():
            m.rule_hits.labels(level).inc(count)
        m.batch_size.observe(n)
        m.added_latency.observe(latency, n)
        for stage, seconds in outcome.timings.items():
            m.stage_seconds.labels(stage).observe(seconds)
        m.stage_seconds.labels("produce_commit").observe(produce_s)


def _kind(headers: Sequence[tuple[str, bytes]] | None, topic_kind: EventKind | None) -> EventKind | None:
    for name, value in headers or ():
        if name == KIND_HEADER:
            return parse_kind(value.decode("utf-8", "replace"))
    return topic_kind
