"""Crash: `kill -9` of `scorer run` at random points of a live stream, again and again.

At-least-once (default): after the last restart every good input has its score (and alert)
and every hostile one its dead letter. Duplicates are attributed to the crash that caused
them and bounded per crash. The precise reading of "within one in-flight batch per crash":
a kill repeats only what the killed process had handed to the producer and not yet
committed, which pipelined delivery limits to ``batch.max_inflight`` batches awaiting their
acks plus the batch being handed over, so at most (max_inflight + 1) x max_records records.
Attribution: every output record carries the producer's create time; the first copy of a
duplicated uid was written by one process incarnation (start..kill window), and that kill
is what made the input be read again. Every duplicate carries its event uid.

Exactly-once (SCORER_KAFKA__TRANSACTIONAL=true): a read_committed reader of the scores and
alerts topics sees every event once; crashed transactions are aborted by the restarted
process, which reuses the same transactional.id and so fences its dead predecessor. A
read_uncommitted reader shows the aborted records, attributed to kills the same way: at
least one kill must land inside a transaction, and one kill aborts at most one batch.

Every kill lands mid-stream on any machine: the stream has no fixed length (a scorer faster
than the feed would otherwise finish it before the last kill); it flows at a fixed rate until
the last kill is done, then one more chunk is produced, which no killed process can have
seen, so each kill leaves work for the next process. Every kill but the first also waits,
if it must, until the scorer has published an output (``first_output``): on observed
progress, not on the time a slow machine needs to get going.

Reproduce: SCORER_RELIABILITY_SEED=<seed printed> pytest -s tests/reliability/test_crash.py
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition

from tests.support.faults import (
    Ledger,
    LiveFeed,
    ScorerProcess,
    Tally,
    Topics,
    new_topics,
    plaintext,
    read_topics,
    score_backends,
    scorer_env,
    seed,
    stopped_on_exit,
)
from tests.support.kafka import KafkaBroker
from tests.support.triton import TritonServer

pytestmark = [pytest.mark.data, pytest.mark.slow]

CRASHES = int(os.environ.get("SCORER_RELIABILITY_CRASHES", "6"))
AIMED = 6  # exactly-once: more kills at most, each aimed at an open transaction, until one lands inside one
BATCH = 64  # SCORER_BATCH__MAX_RECORDS
INFLIGHT = 4  # SCORER_BATCH__MAX_INFLIGHT (the default): batches delivered but not yet committed
PER_CRASH_BOUND = BATCH * (INFLIGHT + 1)  # records one kill may make the scorer write twice
RATE = 500.0  # input events per second while the scorer is being killed (until the last kill)
PARTITIONS = 3  # of every topic

Output: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclass
class Lives:
    """Wall-clock windows (ms) of each process incarnation: start .. kill (the last one
    runs to the end), to tell which incarnation wrote an output record."""

    starts: list[int] = field(default_factory=list)
    kills: list[int] = field(default_factory=list)

    def started(self) -> None:
        self.starts.append(int(time.time() * 1000))

    def killed(self) -> None:
        self.kills.append(int(time.time() * 1000) + 1)

    def writer(self, timestamp_ms: int) -> int:
        """Index of the incarnation alive at ``timestamp_ms`` (its create time)."""
        life = bisect.bisect_right(self.starts, timestamp_ms) - 1
        assert life >= 0 and (life >= len(self.kills) or timestamp_ms <= self.kills[life]), (
            f"an output written at {timestamp_ms} while no scorer was running")
        return life


def duplicates_per_crash(tally: Tally, lives: Lives) -> Counter[int]:
    """Extra copies of scores and dead letters, by the incarnation that wrote the earlier copy
    (index == CRASHES: the last, never killed, process: a duplicate no crash explains)."""
    per_crash: Counter[int] = Counter()
    for stamps in tally.stamps.values():
        for earlier in sorted(stamps)[:-1]:
            per_crash[lives.writer(earlier)] += 1
    return per_crash


def first_outputs_before(tally: Tally, lives: Lives) -> list[int]:
    """For each kill, how many events had their first score or dead letter before it."""
    firsts = sorted(min(stamps) for stamps in tally.stamps.values())
    return [bisect.bisect_right(firsts, kill) for kill in lives.kills]


async def _crash_loop(
    kafka: KafkaBroker, triton: TritonServer, repository: Path, tmp_path: Path, *, transactional: bool
) -> tuple[Topics, Ledger, list[Output], Lives, list[bool]]:
    rng = random.Random(seed())
    topics = await new_topics(kafka, partitions=PARTITIONS)
    env = scorer_env(
        kafka.bootstrap, topics, triton=triton, repository=repository,
        SCORER_BATCH__MAX_RECORDS=str(BATCH),
        SCORER_BATCH__MAX_INFLIGHT=str(INFLIGHT),
        SCORER_KAFKA__TRANSACTIONAL="true" if transactional else "false",
        # Static membership: the restarted process takes its partitions back at once
        # instead of waiting out the dead member's session (6 s per crash otherwise).
        SCORER_KAFKA__GROUP_INSTANCE_ID=f"{topics.prefix}-0",
    )
    proc = ScorerProcess(env, tmp_path / "scorer.log")
    lives = Lives()
    started = time.monotonic()
    probe = await TransactionProbe.open(kafka, topics) if transactional else None
    with stopped_on_exit(proc), first_output(kafka, topics) as output_seen:
        live = LiveFeed.start(kafka, topics, "c", rate=RATE)
        kills: list[str] = []
        in_txn: list[bool] = []
        crash = 0
        # Exactly-once: up to AIMED more kills, aimed at an open transaction, if no random one hit one.
        while crash < CRASHES or (probe is not None and not any(in_txn) and crash < CRASHES + AIMED):
            lives.started()
            proc.start()
            await proc.wait_ready()
            if crash > 0:  # this kill must come after an output (the first may hit the first join)
                await output_seen()
            # Random point: half the kills while the restarted process works through the
            # backlog that built up while it was down (batches in flight), half later
            # in the live stream, when it may be idle between batches.
            aiming = crash >= CRASHES and probe is not None
            # An aimed kill lands in the backlog: batches back to back, a transaction open most of the time.
            early = aiming or rng.random() < 0.5
            await asyncio.sleep(rng.uniform(0.05, 0.5) if early else rng.uniform(0.3, 2.5))
            consumed = proc.metric("scorer_events_consumed_total")
            aimed = ""
            if aiming:
                assert probe is not None
                aimed = f" (aimed, {'saw' if await probe.wait_open(timeout=10.0) else 'no'} open transaction)"
            else:  # the scrape is served between batches: don't bias the kill towards that
                await asyncio.sleep(rng.uniform(0.0, 0.3))
            proc.kill()
            lives.killed()
            kill = f"#{crash}{aimed}: {'early' if early else 'late'}, this process had consumed " \
                   f"{consumed:.0f}; {live.produced} produced"
            if probe is not None:
                # The dead producer's transaction stays open until the restart aborts it; a
                # commit the broker had already received looks open for a moment: let it end.
                await asyncio.sleep(0.5)
                in_txn.append(await probe.is_open())
                kill += f"; {'inside' if in_txn[-1] else 'outside'} a transaction"
            kills.append(kill)
            crash += 1
        produced_by_last_kill = live.stop()  # one more chunk follows: work the last killed process never saw
        lives.started()
        proc.start()
        sent, ledger, outputs = await live.outcomes()
        rc = proc.stop()
    if probe is not None:
        await probe.close()
    report = ledger.report(outputs)
    before = first_outputs_before(ledger.tally(outputs), lives)
    print(f"\n{'exactly-once' if transactional else 'at-least-once'}: {len(lives.kills)} x kill -9 in "
          f"{time.monotonic() - started:.0f}s; {report}\n  "
          + "\n  ".join(f"{k}; {n} events had an outcome before it" for k, n in zip(kills, before, strict=True)))
    assert sent > produced_by_last_kill, (sent, produced_by_last_kill)
    assert rc == 0, proc.log_tail()
    assert not report.problems(), report.problems()
    assert score_backends(outputs, topics.scores) == {"triton"}
    # Mid-stream: after every random kill there was still work left, and all but possibly
    # the first landed after the scorer had written outputs (the first may hit the first join).
    assert all(n < report.inputs for n in before[:CRASHES]), before
    assert sum(n > 0 for n in before[:CRASHES]) >= CRASHES - 1, before
    if transactional:
        assert report.duplicate_count == 0, f"duplicates under read_committed: {report.duplicates}"
    return topics, ledger, outputs, lives, in_txn


async def test_kill9_repeatedly_loses_nothing_at_least_once(
    kafka: KafkaBroker, own_triton: TritonServer, model_repository: Path, tmp_path: Path
) -> None:
    _, ledger, outputs, lives, _ = await _crash_loop(kafka, own_triton, model_repository, tmp_path,
                                                     transactional=False)
    tally = ledger.tally(outputs)
    per_crash = duplicates_per_crash(tally, lives)
    alerts = tally.alerts
    print(f"  duplicates (scores + dead letters) per crash: {[per_crash[i] for i in range(len(lives.kills))]} "
          f"(bound {PER_CRASH_BOUND} each); alerts: {sum(alerts.values())} for {len(alerts)} events, "
          f"{sum(n - 1 for n in alerts.values())} duplicates")
    assert per_crash[CRASHES] == 0, "duplicates written by the process that was never killed"
    assert max(per_crash.values(), default=0) <= PER_CRASH_BOUND, per_crash
    # An alert is duplicated only with its score (same batch, same outputs).
    assert sum(n - 1 for n in alerts.values()) <= sum(per_crash.values())


async def test_kill9_repeatedly_no_duplicates_exactly_once(
    kafka: KafkaBroker, own_triton: TritonServer, model_repository: Path, tmp_path: Path
) -> None:
    topics, ledger, outputs, lives, in_txn = await _crash_loop(kafka, own_triton, model_repository, tmp_path,
                                                               transactional=True)
    assert all(n == 1 for n in ledger.tally(outputs).alerts.values()), "an alert twice under read_committed"
    # The aborted transactions, seen by a read_uncommitted reader and attributed to kills
    # by create time. A kill can land between transactions (scoring, or waiting in
    # getmany), so one random kill is not sure to abort one: the loop aims extra kills at
    # an open transaction until one did.
    committed = {(m.partition, m.offset) for m in outputs if m.topic == topics.scores}
    raw = await read_topics(plaintext(kafka), [topics.scores], lambda got: len(got) >= len(committed),
                            timeout=30, isolation="read_uncommitted", settle=0.5)
    aborted = Counter(lives.writer(m.timestamp) for m in raw if (m.partition, m.offset) not in committed)
    kills = len(lives.kills)
    print(f"  read_uncommitted: aborted score records per kill {[aborted[i] for i in range(kills)]}")
    assert aborted[kills] == 0, "the process that was never killed aborted a transaction"
    assert sum(aborted.values()) >= 1, "no kill landed inside a transaction"
    # Every kill that had records aborted left its transaction open (the probe agrees with
    # the read_uncommitted reader), and it aborted one batch at most.
    assert {i for i in range(kills) if aborted[i]} <= {i for i, hit in enumerate(in_txn) if hit}, (aborted, in_txn)
    assert max(aborted.values()) <= BATCH, "a kill aborted more than the one batch in its transaction"


@contextlib.contextmanager
def first_output(kafka: KafkaBroker, topics: Topics) -> Iterator[Callable[[], Awaitable[None]]]:
    """Watches, from the start, for the first score or dead letter (read_committed) that the
    scorer publishes; the yielded coroutine function returns once there is one (at once
    after that). Its create time precedes the moment it was read, so a kill after that has
    an output before it, however long a slow machine takes to get going."""

    async def watch(timeout: float = 120.0) -> bool:
        reader = AIOKafkaConsumer(topics.scores, topics.dlq, bootstrap_servers=kafka.bootstrap, group_id=None,
                                  auto_offset_reset="earliest", enable_auto_commit=False,
                                  isolation_level="read_committed")
        await reader.start()
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if any((await reader.getmany(timeout_ms=200)).values()):
                    return True
            return False
        finally:
            await reader.stop()

    watcher = asyncio.create_task(watch())

    async def seen() -> None:
        assert await asyncio.shield(watcher), "the scorer published nothing in 120 s"

    try:
        yield seen
    finally:
        watcher.cancel()


@dataclass
class TransactionProbe:
    """Is a transaction with records open on the scores topic? Its high watermark is past
    its last stable offset (what a read_committed reader may see) exactly then."""

    committed: AIOKafkaConsumer
    uncommitted: AIOKafkaConsumer
    partitions: list[TopicPartition]

    @classmethod
    async def open(cls, kafka: KafkaBroker, topics: Topics) -> TransactionProbe:
        readers = [AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=None, isolation_level=level)
                   for level in ("read_committed", "read_uncommitted")]
        for reader in readers:
            await reader.start()
        return cls(readers[0], readers[1], [TopicPartition(topics.scores, p) for p in range(PARTITIONS)])

    async def is_open(self) -> bool:
        # The high watermark first, then the last stable offset: records written by then and not
        # stable after it are in a transaction open at the second answer. Asked together, a
        # whole short transaction (written and committed between the two answers) read as open.
        high = await self.uncommitted.end_offsets(self.partitions)
        stable = await self.committed.end_offsets(self.partitions)
        return any(high[tp] > stable[tp] for tp in self.partitions)

    async def wait_open(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.is_open():
                return True
        return False

    async def close(self) -> None:
        await asyncio.gather(self.committed.stop(), self.uncommitted.stop())
