"""A live stream through `scorer run` on the three-broker cluster, for the cluster fault
tests: fresh replicated topics, a feed at a fixed rate, a ready scorer, steps that wait for
the scorer's observed progress (never for time), and the uid ledger of tests/support/faults
checked at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import TopicPartition

from scorer.kafka.view import use_majority_view
from tests.support.cluster import KafkaCluster
from tests.support.faults import (
    Ledger,
    LedgerReport,
    ScorerProcess,
    Topics,
    endless_stream,
    feed,
    read_topics,
    scorer_env,
    seed,
    stopped_on_exit,
    usable_kinds,
)

RATE = 300.0  # events per second, all kinds
PARTITIONS = 3
BATCH, INFLIGHT = 64, 4
PER_FAULT_BOUND = BATCH * (INFLIGHT + 1)  # at-least-once: what one fault may make the scorer write twice
STALL_S = 180.0  # a step fails when the scorer scores nothing new for this long
UPSTREAM_TIMEOUT_MS = 10_000  # the feed's request timeout (UpstreamProducer)


class UpstreamProducer(AIOKafkaProducer):  # type: ignore[misc]
    """The feed's producer, as an upstream that rides out a stale leader: who leads what
    from most brokers (as the scorer's clients, scorer.kafka.view; Java clients get there
    by leader epochs), and a record that waited its whole timeout for room in a partition's
    batch (its leader stale or gone) is offered again, never dropped: it was not taken.
    Requests time out after UPSTREAM_TIMEOUT_MS: a produce request a stale leader holds,
    waiting for followers it cannot reach, holds the feed's whole chunk that long, and the
    test is about the scorer's progress on input that keeps coming."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**(options | {"request_timeout_ms": UPSTREAM_TIMEOUT_MS}))
        use_majority_view(self.client)

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        while True:
            try:
                return await super().send(*args, **kwargs)
            except KafkaTimeoutError:
                continue


@dataclass
class Run:
    cluster: KafkaCluster
    topics: Topics
    proc: ScorerProcess
    rng: random.Random
    progress: list[int] = field(default_factory=lambda: [0])
    until: asyncio.Event = field(default_factory=asyncio.Event)
    steps: list[str] = field(default_factory=list)
    sent: int = 0  # records the feed produced, once it ended
    report: LedgerReport | None = None  # the ledger's verdict, once every output was read
    t0: float = field(default_factory=time.monotonic)
    feeding: asyncio.Task[int] | None = None  # the feed; its failure fails the step waiting on the scorer

    def step(self, what: str) -> None:
        self.steps.append(f"{time.monotonic() - self.t0:6.1f}s  {self.progress[0]:6d} produced  {what}")

    async def advance(self, low: int = 300, high: int = 900) -> None:
        """Until the scorer has scored a seeded number more events (its progress, not time)."""
        await self.scored_more(self.rng.randint(low, high))

    async def first_progress(self, since: str) -> None:
        """Until the scorer has scored one more event; a step says how long after ``since``."""
        await self.scored_more(1)
        self.step(f"first event scored after the {since}")

    async def scored_more(self, n: int) -> None:
        """Until the scorer has scored ``n`` more events. A feed that died fails it with the
        feed's error: a scorer without input stalls too."""
        progress = asyncio.ensure_future(self.proc.scored_more(n, timeout=STALL_S))
        waiting: set[asyncio.Future[Any]] = {progress} | ({self.feeding} if self.feeding is not None else set())
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if progress not in done:
            progress.cancel()
            assert self.feeding is not None
            raise AssertionError(f"the feed ended mid-stream after {self.feeding.result()} records")
        progress.result()

    async def busiest_input(self) -> tuple[str, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.cluster.bootstrap, group_id=None)
        await consumer.start()
        try:
            tps = [TopicPartition(self.topics.input(k), p) for k in self.topics.kinds for p in range(PARTITIONS)]
            ends = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
        busiest = max(tps, key=lambda tp: ends[tp])
        return busiest.topic, busiest.partition

    async def kill_and_return(self, node: int, why: str) -> None:
        self.cluster.kill_node(node)
        self.step(f"kill -9 broker {node} ({why})")
        await self.advance()
        self.step(f"scorer made progress without broker {node}")
        await asyncio.to_thread(self.cluster.start_node, node)
        await self.cluster.wait_isr(self.all_topics())
        self.step(f"broker {node} back, every ISR full")

    def all_topics(self) -> list[str]:
        return [self.topics.input(k) for k in self.topics.kinds] + self.topics.all_outputs()


@asynccontextmanager
async def live_run(
    cluster: KafkaCluster, tmp_path: Path, *, transactional: bool,
    env: Callable[[Topics], dict[str, str]] | None = None,
) -> AsyncIterator[Run]:
    """Fresh topics (replication 3), a stream at RATE and a ready `scorer run`; on leaving, the
    stream ends after one more chunk and the ledger of everything it sent is checked by the test.
    ``env``: more of the scorer's environment, for the run's topics (overrides)."""
    topics = Topics(f"c{uuid.uuid4().hex[:8]}", usable_kinds())
    await asyncio.gather(
        *(cluster.acreate_topic(t, PARTITIONS) for t in [topics.input(k) for k in topics.kinds] + topics.all_outputs())
    )
    scorer = scorer_env(
        cluster.bootstrap,
        topics,
        SCORER_BATCH__MAX_RECORDS=str(BATCH),
        SCORER_BATCH__MAX_INFLIGHT=str(INFLIGHT),
        SCORER_KAFKA__TRANSACTIONAL="true" if transactional else "false",
        SCORER_KAFKA__GROUP_INSTANCE_ID=f"{topics.prefix}-0",
        # The control topics would be created with one replica: not what this suite is about.
        SCORER_LIFECYCLE__ENABLED="false",
        # SCORER_CLUSTER_LOG_LEVEL=DEBUG: the scorer's log (aiokafka's requests and retries
        # included) says which request waits on which broker when a fault stalls it.
        SCORER_LOG_LEVEL=os.environ.get("SCORER_CLUSTER_LOG_LEVEL", "INFO"),
    ) | (env(topics) if env is not None else {})
    run = Run(cluster, topics, ScorerProcess(scorer, tmp_path / "scorer.log"), random.Random(seed()))
    task = run.feeding = asyncio.create_task(
        feed(
            cluster.client_config(),
            topics,
            endless_stream(topics.kinds, "k"),
            rate=RATE,
            progress=run.progress,
            until=run.until,
            producer_class=UpstreamProducer,
        )
    )
    with stopped_on_exit(run.proc):
        run.proc.start()
        await run.proc.wait_ready()
        run.step("scorer ready")
        await run.advance()
        yield run
        run.until.set()
        run.sent = await task
        run.report = await outcome(run)  # the scorer still runs: it scores the last chunk


async def outcome(run: Run) -> LedgerReport:
    ledger = Ledger.of(itertools.islice(endless_stream(run.topics.kinds, "k"), run.sent), run.topics)
    outputs = await read_topics(run.cluster.client_config(), run.topics.all_outputs(), ledger.complete, timeout=STALL_S)
    report = ledger.report(outputs)
    alerts_twice = sum(n - 1 for n in ledger.tally(outputs).alerts.values())
    rc = run.proc.stop()
    print("\n" + "\n".join(run.steps) + f"\n{report}; alerts twice: {alerts_twice}; scorer rc {rc}")
    assert rc == 0, run.proc.log_tail()
    assert not report.problems(), report.problems()
    return report


def check(report: LedgerReport | None, transactional: bool, faults: int) -> None:
    """The delivery promise: no duplicate at all under exactly-once, a bounded number per fault otherwise."""
    assert report is not None
    if transactional:
        assert report.duplicate_count == 0, f"duplicates under read_committed: {report.duplicates}"
    else:
        assert report.duplicate_count <= faults * PER_FAULT_BOUND, report.duplicate_count
