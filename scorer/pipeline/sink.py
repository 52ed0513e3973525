"""Kafka out: a batch's outputs produced, then its offsets committed, in batch order.

At-least-once (the default): offsets move only past batches whose outputs the broker has
acknowledged. Delivery is pipelined: while batch N waits for its acks, the loop already
scores batch N+1; each delivery awaits its predecessor, so commits stay in batch order, and
the loop bounds how many wait (``batch.max_inflight``). Exactly-once: one transaction per
batch carries its outputs and its offsets, visible together or not at all.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any

import msgspec
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from scorer.kafka import produce_batched, send_batched
from scorer.kafka.fetch import fetch_in_flight, release_fetch
from scorer.native import findings
from scorer.pipeline.outcome import ScoredEvent, ScoredEvents
from scorer.pipeline.records import OutputRecord

log = logging.getLogger(__name__)
_UID = attrgetter("uid")
# How long an acknowledged batch's offsets may wait for the next batches' to be committed
# with them (at light load; under load ``max_inflight`` makes them commit at once).
COMMIT_WITHIN_S = 0.1


class Sink:
    """Delivers batches through ``producer`` and commits their offsets through ``consumer``
    (the group member that owns the partitions)."""

    def __init__(self, producer: Any, consumer: Any, group_id: str) -> None:
        self.producer = producer
        self.consumer = consumer
        self.group_id = group_id
        self._deliveries: collections.deque[asyncio.Task[None]] = collections.deque()
        self._uncommitted: dict[TopicPartition, int] = {}
        self._held = 0  # acked batches whose offsets wait in _uncommitted
        self._committing = 0  # acked batches whose offsets are in the commit on the wire
        self._max_inflight = 1  # the loop's bound (reap); 1: every batch commits at once
        self._committer: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def deliver(
        self, outputs: list[OutputRecord], offsets: dict[TopicPartition, int], on_acked: Callable[[float], None],
    ) -> None:
        """Hand ``outputs`` to the producer; once the broker acknowledged them all (and every
        earlier batch is delivered), queue ``offsets`` for commit and call ``on_acked`` with
        the time of the last ack. Returns as soon as the records are handed over."""
        acks = await send_batched(self.producer, outputs)
        previous = self._deliveries[-1] if self._deliveries else None
        self._deliveries.append(asyncio.create_task(self._finish(previous, acks, offsets, on_acked)))

    def awaiting_answers(self) -> bool:
        """Whether a request of the loop's clients may be answered now: a batch's produce not
        all acknowledged, a commit or a fetch on the wire (:func:`scorer.pipeline.turns.watch_io`)."""
        committer = self._committer
        return (any(not d.done() for d in self._deliveries) or (committer is not None and not committer.done())
                or fetch_in_flight(self.consumer))

    def acking(self) -> bool:
        """Whether the last batch handed over is not acknowledged (and committed in order) yet."""
        return bool(self._deliveries) and not self._deliveries[-1].done()

    def fetch_after_acks(self) -> None:
        """The fetch request that a small last batch holds (scorer.kafka.fetch.fetch_rows's
        ``hold_below``) goes once that batch is delivered, or has failed."""
        consumer = self.consumer
        self._deliveries[-1].add_done_callback(lambda _: release_fetch(consumer))

    async def deliver_transaction(self, outputs: list[OutputRecord], offsets: dict[TopicPartition, int]) -> None:
        # One transaction per batch: outputs and offsets become visible together or not at all.
        async with self.producer.transaction():
            await produce_batched(self.producer, outputs)
            await self.producer.send_offsets_to_transaction(offsets, self.group_id)

    async def reap(self, max_inflight: int) -> None:
        """Surface the errors of finished deliveries, and wait while ``max_inflight`` batches
        are unacknowledged: that bounds the memory a slow broker can make the loop hold.
        Batches acked but held uncommitted count too: the next batch never puts more than
        ``max_inflight`` + 1 at risk of being scored again after a crash."""
        self._max_inflight = max_inflight
        while self._deliveries and (self._deliveries[0].done() or len(self._deliveries) >= max_inflight):
            await self._deliveries.popleft()
        self._commit_soon()
        # A commit still on the wire leaves its batches at risk too: behind a slow broker the
        # acked batches would otherwise pile up uncommitted (a kill -9 under load repeated 11
        # batches with max_inflight 4). Wait for it instead.
        while self._at_risk() >= max_inflight and self._committer is not None and not self._committer.done():
            await self._committer
            self._commit_soon()

    def _at_risk(self) -> int:
        """Batches handed over whose offsets are not committed yet."""
        return sum(not d.done() for d in self._deliveries) + self._held + self._committing

    async def drain(self) -> None:
        """Wait until every batch handed to the producer is acknowledged and committed."""
        while self._deliveries:
            await self._deliveries.popleft()
        while True:
            self._commit_soon(now=True)
            if self._committer is None or self._committer.done():
                return
            await self._committer

    async def _finish(
        self, previous: asyncio.Task[None] | None, acks: list[Any], offsets: dict[TopicPartition, int],
        on_acked: Callable[[float], None],
    ) -> None:
        await asyncio.gather(*acks)
        acked = time.perf_counter()
        if previous is not None:
            await previous
        # Offsets only ever move past batches whose outputs are all acknowledged.
        self._uncommitted.update(offsets)
        self._held += 1
        self._commit_soon()
        on_acked(acked)

    def _commit_soon(self, now: bool = False) -> None:
        """Commit the held offsets, or let them wait for the next batches' (at most
        COMMIT_WITHIN_S). An OffsetCommit per 50-record batch was ~15% of the passthrough's
        CPU at 10,000 events/s (docs/benchmarks.md section 16), and nothing waits for it; a
        batch held uncommitted counts against ``max_inflight`` like one unacknowledged, so
        a crash still repeats at most ``max_inflight`` + 1 batches. Commits never overlap:
        one on the wire, the next batches' offsets queue up for the one after it."""
        if not self._uncommitted or (self._committer is not None and not self._committer.done()):
            return  # nothing to commit, or the running commit calls this again when done
        unacked = sum(not d.done() for d in self._deliveries)
        if now or self._held + unacked >= self._max_inflight:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._committer = asyncio.create_task(self._commit_pending())
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(COMMIT_WITHIN_S, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._commit_soon(now=True)

    async def _commit_pending(self) -> None:
        offsets, self._uncommitted, self._committing, self._held = self._uncommitted, {}, self._held, 0
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            log.warning("offsets not committed (%s); those batches will be re-scored", exc)
        finally:  # offsets that queued meanwhile: once this task is done
            self._committing = 0
            asyncio.get_running_loop().call_soon(self._commit_soon)


class Undelivered:
    """Exactly-once: a scored batch whose transaction failed with the producer, kept while
    the Kafka clients are replaced.

    The new consumer reads from the committed offsets, so it reads this batch again; scoring
    it again would feed its events to the per-entity feature windows a second time (a
    restarted process starts them empty instead). Its outputs are delivered as they were
    scored, in a transaction of the new producer, and the consumer moves past it.
    """

    def __init__(self, outputs: list[OutputRecord], starts: dict[TopicPartition, int],
                 ends: dict[TopicPartition, int], on_delivered: Callable[[], None]) -> None:
        self.outputs, self.starts, self.ends, self.on_delivered = outputs, starts, ends, on_delivered

    async def deliver(self, sink: Sink) -> None:
        await sink.deliver_transaction(self.outputs, self.ends)
        self.on_delivered()

    async def redeliver(self, sink: Sink, fetched: dict[TopicPartition, list[Any]]) -> None:
        """With the new clients' first fetch (the consumer has its partitions then): deliver,
        unless the batch is not ours to deliver, then move the consumer back to what
        ``fetched`` started at (it is read again by the next fetch), past this batch if it
        was delivered. Not ours: its partitions went to another member, or its commit
        reached the broker after all (the committed offsets are past it); then nothing is
        delivered and a re-read batch is scored as it would be after a restart."""
        consumer = sink.consumer
        ours = set(self.ends) <= consumer.assignment()
        committed = {tp: await consumer.committed(tp) for tp in self.ends} if ours else {}
        first = {tp: messages[0].offset for tp, messages in fetched.items()}
        # No committed offset yet: the batch was the group's first; read again from its start.
        at_start = ours and all(committed[tp] in (start, None) and first.get(tp, start) == start
                                for tp, start in self.starts.items())
        if at_start:
            await self.deliver(sink)
        else:
            log.info("a batch whose delivery failed is %s; not delivered again here",
                     "owned by another member now" if not ours else "committed already")
        for tp, offset in first.items():
            consumer.seek(tp, offset)
        for tp, offset in self.ends.items() if at_start else ():
            consumer.seek(tp, offset)


def score_records(
    topic: str | None, scores: Sequence[ScoredEvent], encoder: msgspec.json.Encoder,
) -> list[OutputRecord]:
    """One record per scored event on ``topic`` (none when no topic is set), keyed by uid:
    the event's JSON as ``encoder`` writes its :class:`ScoredEvent`."""
    if not topic or not scores:
        return []
    native = findings.module()
    if native is not None and isinstance(scores, ScoredEvents):
        # Written from the kinds' columns: no ScoredEvent, line split or key encode per event.
        out: list[OutputRecord] = []
        for k in scores.kinds:
            out += native.score_records(OutputRecord, topic, k.kind.value, k.model, k.version, k.backend, k.uids,
                                        k.scores, k.alerted, k.rules, encoder.encode)
        return out
    # One encoder call for the batch: JSON escapes newlines inside strings, so the lines
    # are exactly the records.
    lines = encoder.encode_lines(scores)[:-1].split(b"\n")
    if len(lines) != len(scores):  # encode_lines escapes every newline: this is a bug, not input
        raise ValueError(f"{len(scores)} score records encoded as {len(lines)} lines")
    # C-level maps: a Python frame per record costs more than building it.
    return list(map(OutputRecord, repeat(topic), lines, map(str.encode, map(_UID, scores))))
