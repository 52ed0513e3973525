"""At-least-once commits: offsets move only past acknowledged batches, in order; at light
load an acked batch's offsets wait for the next batches' (one OffsetCommit for several),
and never so long that a crash would repeat more than ``max_inflight`` + 1 batches."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition

from scorer.kafka import fetch
from scorer.pipeline.records import OutputRecord
from scorer.pipeline.sink import COMMIT_WITHIN_S, Sink

TP = TopicPartition("events.netflow", 0)
MAX_INFLIGHT = 4


class AckOnDemand:
    """A producer whose acks the test gives."""

    def __init__(self) -> None:
        self.acks: list[asyncio.Future[None]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def create_batch(self) -> AckOnDemand:
        return self

    def append(self, *, key: bytes | None, value: bytes, timestamp: None, headers: list[object]) -> object:
        return object()

    def record_count(self) -> int:
        return 1

    async def send_batch(self, batch: object, topic: str, *, partition: int) -> asyncio.Future[None]:
        self.acks.append(asyncio.get_running_loop().create_future())
        return self.acks[-1]

    async def ack_all(self) -> None:
        for ack in self.acks:
            if not ack.done():
                ack.set_result(None)
        for _ in range(10):  # the delivery tasks see them
            await asyncio.sleep(0)


class Committed:
    def __init__(self) -> None:
        self.commits: list[int] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await asyncio.sleep(0)
        self.commits.append(offsets[TP])


async def _deliver(sink: Sink, end: int) -> None:
    await sink.reap(MAX_INFLIGHT)
    await sink.deliver([OutputRecord("alerts.netflow", b"v")], {TP: end}, lambda _: None)


def _at_risk(handed: int, consumer: Committed) -> int:
    """Batches handed over whose offsets are not committed (one record each)."""
    return handed - max(consumer.commits, default=0)


async def test_light_load_commits_every_few_batches_and_drain_commits_the_rest() -> None:
    producer, consumer = AckOnDemand(), Committed()
    sink = Sink(producer, consumer, "g")
    for end in range(1, 10):  # one batch in flight at a time, each acked before the next
        await _deliver(sink, end)
        assert _at_risk(end, consumer) <= MAX_INFLIGHT + 1
        await producer.ack_all()
    assert 1 <= len(consumer.commits) < 9, consumer.commits  # coalesced, and not held for ever
    assert consumer.commits == sorted(consumer.commits)
    await sink.drain()
    assert consumer.commits[-1] == 9


async def test_held_offsets_are_committed_within_the_wait_or_when_acks_lag(monkeypatch: pytest.MonkeyPatch) -> None:
    producer, consumer = AckOnDemand(), Committed()
    sink = Sink(producer, consumer, "g")
    await _deliver(sink, 1)
    await producer.ack_all()
    assert consumer.commits == []  # held for the next batches
    for _ in range(1000):  # the wait is bounded: observed, not timed (slow machines)
        if consumer.commits:
            break
        await asyncio.sleep(COMMIT_WITHIN_S / 10)
    assert consumer.commits == [1]
    # From here the timer must not decide: only max_inflight may commit.
    monkeypatch.setattr("scorer.pipeline.sink.COMMIT_WITHIN_S", 3600.0)
    for end in (2, 3):  # two more acked at once: held, the wait not over
        await _deliver(sink, end)
        await producer.ack_all()
    assert consumer.commits == [1]
    for end in range(4, 4 + MAX_INFLIGHT):  # then acks stop coming: the held ones are committed
        await _deliver(sink, end)
        await asyncio.sleep(0.01)
        assert _at_risk(end, consumer) <= MAX_INFLIGHT + 1, (end, consumer.commits)
    assert consumer.commits == [1, 3]
    await producer.ack_all()
    await sink.drain()
    assert consumer.commits[-1] == 3 + MAX_INFLIGHT


class SlowCommits(Committed):
    """A broker that answers OffsetCommit only when the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await self.gate.wait()
        self.commits.append(offsets[TP])


async def test_a_slow_commit_holds_the_loop_rather_than_pile_up_batches_at_risk() -> None:
    producer, consumer = AckOnDemand(), SlowCommits()
    sink = Sink(producer, consumer, "g")
    handed = 0

    async def loop() -> None:  # the scoring loop: every batch acked at once, commits stuck
        nonlocal handed
        for end in range(1, 4 * MAX_INFLIGHT):
            await _deliver(sink, end)
            handed = end
            await producer.ack_all()

    running = asyncio.create_task(loop())
    for _ in range(200):  # the loop runs as far as it may: event-loop turns, no timer involved
        await asyncio.sleep(0)
    assert consumer.commits == [] and 0 < handed <= MAX_INFLIGHT + 1, handed
    stuck_at = handed
    consumer.gate.set()  # the broker answers: the loop goes on, every commit in order
    await running
    assert handed == 4 * MAX_INFLIGHT - 1 > stuck_at
    await sink.drain()
    assert consumer.commits == sorted(consumer.commits) and consumer.commits[-1] == handed


class HeldFetcher:
    """aiokafka's Fetcher as scorer.kafka.fetch sees it: the nodes a fetch is in flight to, and
    the wake-up of its fetch routine (a request held by fetch_rows is marked in its dict)."""

    def __init__(self) -> None:
        self._in_flight: set[int] = set()
        self._wait_consume_future = object()
        self.__dict__[fetch._HELD] = True
        self.woken = 0

    def _notify(self, future: object) -> None:
        self.woken += 1


async def test_the_loop_hears_when_the_last_batch_is_delivered_and_whether_requests_are_out() -> None:
    """What the scoring loop reads between batches: ``acking`` (the last batch handed over not
    acknowledged yet: its fetch request waits), ``fetch_after_acks`` (the held fetch released
    once it is delivered), ``awaiting_answers`` (a produce, commit or fetch request may be
    answered: serve_io's turns)."""
    producer, consumer = AckOnDemand(), SlowCommits()
    consumer._fetcher = fetcher = HeldFetcher()  # type: ignore[attr-defined]
    sink = Sink(producer, consumer, "g")
    assert not sink.acking() and not sink.awaiting_answers()
    await _deliver(sink, 1)
    sink.fetch_after_acks()
    assert sink.acking() and sink.awaiting_answers() and fetcher.woken == 0
    await producer.ack_all()
    assert fetcher.woken == 1 and not sink.acking()
    assert not sink.awaiting_answers()  # its offsets held for the next batches': nothing on the wire
    fetcher._in_flight.add(1)
    assert sink.awaiting_answers()  # the released fetch on the wire
    fetcher._in_flight.clear()
    draining = asyncio.create_task(sink.drain())
    await asyncio.sleep(0)
    assert sink.awaiting_answers()  # the commit on the wire
    consumer.gate.set()
    await draining
    assert consumer.commits == [1] and not sink.awaiting_answers()
