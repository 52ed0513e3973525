"""The Kafka scoring loop: source -> :class:`BatchScorer` -> sink, one micro-batch at a time.

``getmany()`` returns one micro-batch per poll (bounded in records and in wait); the batch
is scored, its outputs handed to the :class:`Sink`, and the next batch is fetched while the
broker acknowledges them. A batch is never split across a model swap or a rebalance: the
rebalance listener waits for the batches in flight to be committed before partitions move
to another process, and model swaps run between batches (``between_batches``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber, ProducerFenced, TransactionalIdAuthorizationFailed

from scorer.config import Settings
from scorer.errors import KafkaUnavailable, ScorerError
from scorer.kafka import TopicSpec, ensure_topics, make_consumer, make_producer
from scorer.kafka.transactions import start_exactly_once
from scorer.metrics import BatchTrace, ScorerMetrics
from scorer.pipeline.outcome import BatchOutcome, OutputHook, count_batch
from scorer.pipeline.rebalance import AssignmentMetrics, WaitForBatches
from scorer.pipeline.records import InputRecord
from scorer.pipeline.scoring import BatchScorer
from scorer.pipeline.sink import Sink, Undelivered, score_records
from scorer.pipeline.source import HOLD_FETCH_BELOW, fetch_inputs, fetched_records
from scorer.pipeline.turns import serve_io, watch_io

log = logging.getLogger(__name__)

# Exactly-once: how long the clients may take to come back after the producer died (a
# broker restart takes seconds), and how many replacements in a row without one batch
# delivered are given before the service stops with a one-line reason.
REOPEN_S = 120.0
MAX_REPLACEMENTS = 5
# Not a broken connection: another process owns the transactional id, or the producer is not
# allowed to use it. A new producer would fence that process or fail the same way.
_FATAL = (ProducerFenced, OutOfOrderSequenceNumber, TransactionalIdAuthorizationFailed)


class ScoringLoop:
    def __init__(self, settings: Settings, scorer: BatchScorer, metrics: ScorerMetrics) -> None:
        self.settings = settings
        self.scorer = scorer
        self.metrics = metrics
        self.kind_of_topic = settings.topics.input_topics(settings.kinds)
        self.inflight = asyncio.Lock()  # held while a batch is being scored and handed over
        self.batches = 0
        self._stopping = asyncio.Event()
        self._consumer: Any = None
        self._producer: Any = None
        self._sink: Sink | None = None
        self._json = msgspec.json.Encoder()
        self._started = False
        self._unwatch_io: Callable[[], None] | None = None
        self._replacements = 0  # in a row, without a batch delivered since
        self._undelivered: Undelivered | None = None  # scored, its transaction lost with the producer
        self.paused = False  # consumption held during a Triton outage (pause mode)
        self.trace = BatchTrace.from_env()  # a line per batch, for debugging a latency tail
        # Extension points for the control plane (model lifecycle) and observers:
        # ``between_batches`` run while no batch is in flight (model swaps happen here);
        # ``output_hooks`` add records (e.g. shadow scores) produced and committed with the batch.
        self.between_batches: list[Callable[[], Awaitable[None]]] = []
        self.output_hooks: list[OutputHook] = []
        # ``partition_listeners`` hear each rebalance after the batches in flight are committed.
        self.partition_listeners: list[ConsumerRebalanceListener] = [AssignmentMetrics(metrics)]
        scorer.collect_scores = settings.topics.scores is not None

    @property
    def ready(self) -> bool:
        """Consuming and scoring: not while starting, stopping, or paused for a Triton outage."""
        return self._started and not self._stopping.is_set() and not self.paused

    def output_topics(self) -> list[str]:
        """Every topic a batch's transaction may write to."""
        topics = self.settings.topics
        outputs = [topics.alert_topic(k) for k in self.settings.kinds] + [topics.dead_letter]
        outputs += [topics.scores] if topics.scores else []
        return list(dict.fromkeys(outputs + [hook.topic for hook in self.output_hooks]))

    async def start(self) -> None:
        # So consumers can subscribe before the first alert; a broker that refuses CREATE is
        # logged, not fatal (the topics may be provisioned elsewhere).
        await ensure_topics(self.settings.kafka, [TopicSpec(t) for t in self.output_topics()], refused="warn")
        await self._open_clients()
        self._unwatch_io = watch_io(lambda: self._sink is None or self._sink.awaiting_answers())
        self.metrics.loop_lag.start()
        self.metrics.gc_pauses.install()
        self._started = True

    async def _open_clients(self) -> None:
        kafka = self.settings.kafka
        txn_id = f"{kafka.group_id}-{kafka.client_id}" if kafka.transactional else None
        self._producer = make_producer(kafka, transactional_id=txn_id)
        if txn_id is None:
            await self._producer.start()
        else:  # fences the previous producer of txn_id once its transaction is finished
            # Before the consumer reads the committed offsets: a transaction of the previous
            # producer that the broker left without markers would hide the last ones.
            await start_exactly_once(kafka, self._producer, self.output_topics(), REOPEN_S)
        self._consumer = make_consumer(kafka, [])
        self._sink = Sink(self._producer, self._consumer, kafka.group_id)
        listener = WaitForBatches(self.inflight, self.drain, self.partition_listeners)
        self._consumer.subscribe(list(self.kind_of_topic), listener=listener)
        await self._consumer.start()

    async def _close_clients(self) -> None:
        consumer, producer = self._consumer, self._producer
        self._consumer = self._producer = self._sink = None
        for client in (consumer, producer):
            if client is not None:
                try:
                    await client.stop()
                except Exception as exc:  # a dead producer or an unreachable broker: closing anyway
                    log.debug("closing %s: %r", type(client).__name__, exc)

    async def _replace_clients(self, exc: KafkaError) -> None:
        """Exactly-once: the producer cannot go on (aiokafka's sender routine ends for good
        on some connection errors, e.g. FindCoordinator while the broker restarts). A new
        producer with the same transactional id fences the old one and aborts its open
        transaction; a new consumer reads the committed offsets, and the batch that failed is
        delivered again as it was scored (``Undelivered``: scoring it again would feed the
        feature windows its events twice). Stops the service (one line, no traceback) when Kafka
        stays unreachable for REOPEN_S or keeps failing batches."""
        self._replacements += 1
        if self._replacements > MAX_REPLACEMENTS:
            raise KafkaUnavailable(f"{MAX_REPLACEMENTS} Kafka client replacements in a row without a batch "
                                   f"delivered; last error: {exc}") from exc
        log.warning("exactly-once delivery failed (%s); replacing the Kafka clients, the batch is delivered "
                    "again from the last committed offsets", exc)
        await self._close_clients()
        deadline = time.monotonic() + REOPEN_S
        delay = 0.5
        while True:
            try:
                await self._open_clients()
                return
            except (KafkaError, OSError) as err:
                await self._close_clients()
                if self._stopping.is_set():
                    return
                if isinstance(err, _FATAL) or time.monotonic() > deadline:
                    raise KafkaUnavailable(f"Kafka clients not back {REOPEN_S:.0f} s after a delivery failure: "
                                           f"{err!r}") from err
                log.info("Kafka clients not back yet (%r); retrying in %.1f s", err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def drain(self) -> None:
        """Wait until every batch handed to the producer is acknowledged and committed."""
        if self._sink is not None:
            await self._sink.drain()

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
        await self.metrics.loop_lag.stop()
        self.metrics.gc_pauses.uninstall()
        if self._unwatch_io is not None:
            self._unwatch_io()
        self.trace.close()
        self._started = False

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        batch = self.settings.batch
        while not self._stopping.is_set():
            for hook in self.between_batches:
                await hook()
            self.trace.fetching()
            # A small batch's next fetch request goes once its outputs are acknowledged (_process).
            release = self._sink is None or not self._sink.acking()
            fetched = await fetch_inputs(self._consumer, self.kind_of_topic, timeout_ms=batch.max_wait_ms or 1,
                                         max_records=batch.max_records, hold_below=HOLD_FETCH_BELOW, release=release)
            if not fetched:
                continue
            self.trace.fetched()
            received, now = time.perf_counter(), time.time()
            lost: KafkaError | None = None
            async with self.inflight:
                try:
                    await self._process(fetched, received)
                except KafkaError as exc:
                    if not self.settings.kafka.transactional or isinstance(exc, _FATAL):
                        raise
                    lost = exc
            # Observed once the batch is handed over: metrics are not the outputs' latency.
            oldest_ms = min(messages[0].timestamp for messages in fetched.values())
            self.metrics.fetch_delay.observe(max(0.0, now - oldest_ms / 1000))
            if lost is not None:  # outside ``inflight``: closing the consumer revokes through it
                await self._replace_clients(lost)
                continue
            assert self._sink is not None  # started
            await self._sink.reap(batch.max_inflight)
        await self.drain()

    async def _process(self, fetched: dict[TopicPartition, list[Any]], received: float) -> None:
        assert self._sink is not None  # started
        if self._undelivered is not None:  # new clients' first fetch: from the committed offsets
            await self._undelivered.redeliver(self._sink, fetched)
            self._undelivered = None
            return
        records, offsets = fetched_records(fetched, self.kind_of_topic)
        outcome = await self._score(records)
        outputs = outcome.alerts + outcome.dead_letters + score_records(
            self.settings.topics.scores, outcome.scores, self._json)
        for output_hook in self.output_hooks:
            outputs.extend(output_hook(outcome))
        t_produce = time.perf_counter()
        outcome.timings["score"] = t_produce - received
        n = len(records)
        row = self.trace.scored(n, outcome.timings)
        if self.settings.kafka.transactional:
            def delivered() -> None:
                self._replacements = 0
                done = time.perf_counter()
                self._account(outcome, n, done - received, t_produce, done, done, row)

            batch = Undelivered(outputs, {tp: messages[0].offset for tp, messages in fetched.items()}, offsets,
                                delivered)
            try:
                await batch.deliver(self._sink)
            except KafkaError:
                self._undelivered = batch  # delivered by the new clients (run()), not scored again
                raise
            return
        # ``handed`` is set before the callback can run: acks are only seen once this yields.
        await self._sink.deliver(
            outputs, offsets, lambda acked: self._account(outcome, n, acked - received, t_produce, handed, acked, row))
        handed = time.perf_counter()
        if n < HOLD_FETCH_BELOW:  # its fetch request held (fetch_inputs): sent after the acks
            self._sink.fetch_after_acks()
        # The request on the wire before the next batch takes the CPU (getmany() returns at
        # once when records are buffered).
        await serve_io()
        self.trace.handed()

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

    def _account(self, outcome: BatchOutcome, n: int, latency: float, built: float, handed: float,
                 acked: float, row: dict[str, Any] | None) -> None:
        self.batches += 1
        count_batch(self.metrics, outcome, n, latency, built, handed, acked)
        self.trace.acked(row, latency, handed - built, acked - handed)
