"""Exactly-once after an in-process producer replacement: the batch whose transaction was
lost is delivered as it was scored, not scored again (scoring feeds the per-entity feature
windows, which must see each event once).

The clients here are small fakes of one broker (a log per partition, committed offsets,
transactions that apply their outputs and offsets together); the real-broker path is
tests/reliability/test_broker_restart_exactly_once.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from scorer.config import KafkaSettings, Settings
from scorer.events.structs import EventKind
from scorer.metrics import ScorerMetrics
from scorer.pipeline.loop import ScoringLoop
from scorer.pipeline.outcome import BatchOutcome
from scorer.pipeline.records import InputRecord, OutputRecord
from scorer.pipeline.sink import Sink

TOPIC = "events.netflow"
PARTITIONS = [TopicPartition(TOPIC, p) for p in range(2)]
PER_PARTITION = 12
MAX_RECORDS = 5


@dataclass
class Message:  # what the consumer returns of a record (aiokafka's ConsumerRecord)
    offset: int
    value: bytes
    key: bytes | None = None
    timestamp: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass
class Broker:
    logs: dict[TopicPartition, list[Message]]
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    outputs: list[bytes] = field(default_factory=list)  # values of committed transactions
    # Per transaction, in turn (then "ok"): "lost" (the producer died before the commit
    # reached the broker), "reached" (it died after), "moved" (lost, and partition 0 moved).
    script: list[str] = field(default_factory=list)
    owned: set[TopicPartition] = field(default_factory=lambda: set(PARTITIONS))

    def end(self) -> dict[TopicPartition, int]:
        return {tp: len(log) for tp, log in self.logs.items()}


class FakeConsumer:
    """Reads from the committed offsets, like a new group member."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.position = {tp: broker.committed.get(tp, 0) for tp in broker.owned}

    def assignment(self) -> set[TopicPartition]:
        return set(self.broker.owned)

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Message]]:
        await asyncio.sleep(0)
        out: dict[TopicPartition, list[Message]] = {}
        for tp, at in sorted(self.position.items()):
            taken = self.broker.logs[tp][at:at + max_records - sum(map(len, out.values()))]
            if taken:
                out[tp] = taken
                self.position[tp] = taken[-1].offset + 1
        return out

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.broker.committed.get(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.position[tp] = offset

    async def stop(self) -> None: ...


class FakeBatch:
    def __init__(self) -> None:
        self.values: list[bytes] = []

    def append(self, *, key: bytes | None, value: bytes, timestamp: None, headers: list[Any]) -> object:
        self.values.append(value)
        return object()

    def record_count(self) -> int:
        return len(self.values)


class FakeProducer:
    """Transactional: outputs and offsets reach the broker at commit, together. A commit
    scheduled to fail raises as a dead sender would, after reaching the broker or not."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.pending: list[bytes] = []
        self.offsets: dict[TopicPartition, int] = {}

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def create_batch(self) -> FakeBatch:
        return FakeBatch()

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[None]:
        self.pending += batch.values
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int], group_id: str) -> None:
        self.offsets = dict(offsets)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.pending, self.offsets = [], {}
        yield
        fate = self.broker.script.pop(0) if self.broker.script else "ok"
        if fate in ("ok", "reached"):
            self.broker.outputs += self.pending
            self.broker.committed.update(self.offsets)
        if fate == "moved":  # lost, and the group gives partition 0 to another member
            self.broker.owned = {PARTITIONS[1]}
        if fate != "ok":
            raise KafkaConnectionError("sender routine ended")

    async def stop(self) -> None: ...


class CountingScorer:
    """One output per record; counts how often each record was scored."""

    collect_scores = False

    def __init__(self) -> None:
        self.scored: Counter[tuple[int, int]] = Counter()

    async def score(self, records: Sequence[InputRecord]) -> BatchOutcome:
        self.scored.update((r.ref.partition, r.ref.offset) for r in records)
        alerts = [OutputRecord("alerts.netflow", r.value or b"") for r in records]
        return BatchOutcome(alerts=alerts, dead_letters=[], scores=[], consumed={"netflow": len(records)},
                            scored={("netflow", "fake"): len(records)}, failures=[], timings={}, alert_counts={})


class FakeClientsLoop(ScoringLoop):
    """The scoring loop with its Kafka clients made on the fake broker."""

    def __init__(self, broker: Broker, scorer: CountingScorer) -> None:
        settings = Settings(kinds=(EventKind.NETFLOW,), kafka=KafkaSettings(transactional=True))
        super().__init__(settings.model_copy(update={"batch": settings.batch.model_copy(
            update={"max_records": MAX_RECORDS})}), scorer, ScorerMetrics())  # type: ignore[arg-type]
        self.broker = broker
        self.opened = 0

    async def _open_clients(self) -> None:
        self.opened += 1
        self._producer, self._consumer = FakeProducer(self.broker), FakeConsumer(self.broker)
        self._sink = Sink(self._producer, self._consumer, self.settings.kafka.group_id)


def _broker() -> Broker:
    return Broker({tp: [Message(o, f"{tp.partition}:{o}".encode()) for o in range(PER_PARTITION)]
                   for tp in PARTITIONS})


async def _run_until_committed(broker: Broker, scorer: CountingScorer) -> FakeClientsLoop:
    loop = FakeClientsLoop(broker, scorer)
    await loop._open_clients()
    running = asyncio.create_task(loop.run())
    while broker.committed != broker.end():
        assert not running.done(), running.exception()
        await asyncio.sleep(0.001)
    loop.request_stop()
    await asyncio.wait_for(running, 5)
    return loop


def _every_value() -> list[bytes]:
    return sorted(f"{tp.partition}:{o}".encode() for tp in PARTITIONS for o in range(PER_PARTITION))


async def test_a_batch_lost_with_the_producer_is_delivered_as_scored_not_scored_again() -> None:
    broker = _broker()
    broker.script = ["ok", "ok", "lost"]  # the third batch holds both partitions
    scorer = CountingScorer()
    loop = await _run_until_committed(broker, scorer)
    assert loop.opened == 2, "the clients were replaced once"
    assert set(scorer.scored.values()) == {1}, [k for k, n in scorer.scored.items() if n > 1]
    assert len(scorer.scored) == len(PARTITIONS) * PER_PARTITION
    assert sorted(broker.outputs) == _every_value()  # once each: nothing lost, nothing twice


async def test_a_lost_commit_that_reached_the_broker_is_neither_delivered_nor_scored_again() -> None:
    broker = _broker()
    broker.script = ["ok", "reached"]
    scorer = CountingScorer()
    loop = await _run_until_committed(broker, scorer)
    assert loop.opened == 2
    assert set(scorer.scored.values()) == {1}
    assert sorted(broker.outputs) == _every_value()


async def test_a_lost_batch_whose_partitions_moved_is_left_to_their_new_owner() -> None:
    broker = _broker()
    broker.script = ["ok", "moved"]  # the second batch: partition 0's offsets 5-9
    scorer = CountingScorer()
    loop = FakeClientsLoop(broker, scorer)
    await loop._open_clients()
    running = asyncio.create_task(loop.run())
    while broker.committed.get(PARTITIONS[1]) != PER_PARTITION:
        assert not running.done(), running.exception()
        await asyncio.sleep(0.001)
    loop.request_stop()
    await asyncio.wait_for(running, 5)
    assert loop.opened == 2
    assert broker.committed[PARTITIONS[0]] == MAX_RECORDS, "only the first batch of partition 0 committed here"
    assert sorted(broker.outputs) == sorted(
        [f"0:{o}".encode() for o in range(MAX_RECORDS)] + [f"1:{o}".encode() for o in range(PER_PARTITION)])
