"""Exactly-once across clean broker restarts (issue 19, soak 2026-12-04b: 121 duplicates).

What the soak showed: a clean restart (SIGTERM) of the only broker puts its partitions
leaderless (KRaft with eligible leader replicas) while it still serves requests. A
transaction committed in that window gets PrepareCommit and CompleteCommit in
``__transaction_state``, but its markers are never written (the coordinator skips partitions
without a leader as "likely deleted"): its outputs and its offsets stay pending. The next
scorer (same transactional id) read the previous committed offsets and scored that batch
again; its own first commit then committed both copies. Separately, aiokafka's sender dies
for good when FindCoordinator meets the closing connection, which crashed ``scorer run``.

The test: an exactly-once scorer, a fixed-rate stream, ROUNDS rounds (default 1) of two
faults, each scheduled once the scorer scored PHASE more events:

1. a clean broker restart the scorer rides out on its own (scoring again, no traceback);
2. a clean broker stop, the scorer killed (SIGKILL) while the broker is down, the broker
   started, then the scorer: a commit the broker left without markers during its shutdown
   is not healed by any later commit of the old process, so the new one meets it.

Every input must come out exactly once: 0 lost, 0 duplicates. Small batches make many
commits per second, so some land inside the shutdown window; the window is luck (on the
2-core box, before the fix, the soak hit it at its first broker restart). Landing in it is
not left to luck by test_commit_in_the_shutdown_window_is_not_scored_again below, which
freezes the scorer there: one round here (each fault once) is what CI runs; more rounds
only try the luck again (SCORER_TEST_RESTART_ROUNDS=3: 99 s against 1 round's 50 s at
load 8 on the 2-core box).

Reproduce: SCORER_TEST_RESTART_ROUNDS=3 pytest -s tests/reliability/test_broker_restart_exactly_once.py
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from tests.support.faults import LiveFeed, ScorerProcess, Topics, finish, new_topics, running_scorer, scorer_env
from tests.support.kafka import KafkaBroker

pytestmark = [pytest.mark.data, pytest.mark.slow]

RATE = 500.0
PHASE = int(RATE * 3)  # events scored before each fault and after the last one
ROUNDS = int(os.environ.get("SCORER_TEST_RESTART_ROUNDS", "1"))


async def test_broker_restarts_exactly_once_no_loss_no_duplicates(own_kafka: KafkaBroker, tmp_path: Path) -> None:
    topics = await new_topics(own_kafka)
    env = scorer_env(own_kafka.bootstrap, topics, SCORER_KAFKA__TRANSACTIONAL="true",
                     SCORER_BATCH__MAX_RECORDS="32", SCORER_BATCH__MAX_WAIT_MS="5")
    log = tmp_path / "scorer.log"
    steps: list[str] = []
    async with running_scorer(env, log) as proc:
        live = LiveFeed.start(own_kafka, topics, "x", rate=RATE)
        for i in range(ROUNDS):
            await proc.scored_more(PHASE)
            t0 = time.monotonic()
            await asyncio.to_thread(own_kafka.restart)
            back, scored = time.monotonic(), proc.metric("scorer_events_scored_total")
            # The scorer rides the restart out itself: it scores new events, nobody restarted it.
            while proc.pid is not None and proc.metric("scorer_events_scored_total") <= scored:
                assert time.monotonic() < back + 90, f"round {i}: no event scored 90 s after the broker was back"
                await asyncio.sleep(0.1)
            assert proc.pid is not None, f"round {i}: the scorer died in the broker restart:\n{proc.log_tail()}"
            replaced = log.read_text(errors="replace").count("replacing the Kafka clients")
            steps.append(f"round {i}: restart: broker down {back - t0:.1f}s, scoring again "
                         f"{time.monotonic() - back:.1f}s after; producer replacements so far {replaced}")
            await proc.scored_more(PHASE)
            await asyncio.to_thread(own_kafka.stop)
            proc.kill()  # no commit after the broker's shutdown window: what it left stays
            await asyncio.to_thread(own_kafka.start_again)
            proc.start()
            await proc.wait_ready()
            steps.append(f"round {i}: stop, scorer killed, start: scorer ready")
        end = await finish(live, proc, PHASE)
        produced_by_then, sent, ledger, outputs, rc = end.produced_by_then, end.sent, end.ledger, end.outputs, end.rc
    report = ledger.report(outputs)
    print("\n" + "\n".join(steps) + f"\nexactly-once broker restarts: {report}")
    text = log.read_text(errors="replace")
    assert sent > produced_by_then, (sent, produced_by_then)  # the stream outlived the faults
    assert rc == 0, proc.log_tail()
    assert "Traceback" not in text, text[text.index("Traceback") - 500:][:4000]
    assert not report.problems(), report.problems()
    assert report.duplicate_count == 0, (report.duplicate_count, sorted(report.duplicates)[:10],
                                         where_written(outputs, report.duplicates, own_kafka))


def where_written(outputs: list[ConsumerRecord[bytes, bytes]], uids: dict[str, int], kafka: KafkaBroker) -> str:
    """Each copy of some duplicated outputs (topic, partition, offset, create time): which
    process wrote it and when, beside the broker's log (what to look at when this fails)."""
    rows = sorted((m.timestamp, m.topic, m.partition, m.offset, u) for m in outputs if m.value is not None
                  for u in uids if u.encode() in m.value)[:40]
    return "\n".join([f"{t} {topic}/{p}@{o} {u}" for t, topic, p, o, u in rows] + [f"broker log: {kafka.data_dir}"])


@pytest.mark.parametrize("scorer_killed", [True, False], ids=["scorer-killed", "scorer-kept"])
async def test_commit_in_the_shutdown_window_is_not_scored_again(
    own_kafka: KafkaBroker, tmp_path: Path, scorer_killed: bool,
) -> None:
    """The soak's sequence made to happen, not waited for: the scorer is frozen (SIGSTOP)
    inside a transaction whose outputs and offsets are written and whose EndTxn is not sent
    yet; the broker is sent SIGTERM; once its metadata shows the partitions leaderless the
    scorer is thawed (SIGCONT) and commits into the window. ``scorer-killed``: it is killed
    while the broker is down, the broker started, a new scorer started (the soak's path, and
    the one that made duplicates). ``scorer-kept``: it rides the restart out (its producer may
    die meanwhile and is then replaced in process). ``scorer-killed`` makes up to TRIES
    attempts until a commit is
    seen left without markers (read_committed end behind the high watermark of the group's
    offsets partition with no producer alive); the test fails if none is: it proved nothing.
    That also counts a transaction whose EndTxn never arrived, aborted later by the next
    InitProducerId (whose markers were seen skipped too): before the fix, 1 run in 3 failed."""
    topics = await new_topics(own_kafka)
    env = scorer_env(own_kafka.bootstrap, topics, SCORER_KAFKA__TRANSACTIONAL="true",
                     SCORER_BATCH__MAX_RECORDS="32", SCORER_BATCH__MAX_WAIT_MS="5")
    steps: list[str] = []
    hung = 0
    log = tmp_path / "scorer.log"
    async with running_scorer(env, log) as proc:
        live = LiveFeed.start(own_kafka, topics, "w", rate=RATE)
        for attempt in range(TRIES):
            await proc.scored_more(PHASE)
            probe = await _Probe.open(own_kafka, topics)
            try:
                frozen, scored_before = await probe.freeze_before_end_txn(proc)
                stopping = asyncio.create_task(asyncio.to_thread(own_kafka.stop))
                leaderless = await probe.wait_leaderless(stopping)
            finally:
                if proc.pid is not None:
                    os.kill(proc.pid, signal.SIGCONT)
                await probe.close()
            await stopping
            # Counted once its transaction is committed, and no other can commit with the
            # broker down: the thawed commit was accepted (the soak's case; else the next
            # InitProducerId aborts it) if the count moved. Printed, not required: it is rare
            # on the 2-core box (1 of 9 attempts), and an aborted one can be left open too.
            committed = proc.metric("scorer_events_scored_total") > scored_before
            if not scorer_killed:
                await asyncio.to_thread(own_kafka.start_again)
                scored = proc.metric("scorer_events_scored_total")
                while proc.pid is not None and proc.metric("scorer_events_scored_total") <= scored:
                    await asyncio.sleep(0.1)
                assert proc.pid is not None, f"the scorer died in the broker restart:\n{proc.log_tail()}"
                replaced = log.read_text(errors="replace").count("replacing the Kafka clients")
                steps.append(f"frozen before EndTxn after {frozen} tries, leaderless seen {leaderless}, "
                             f"scoring again; producer replacements {replaced}")
                break
            proc.kill()
            await asyncio.to_thread(own_kafka.start_again)
            probe = await _Probe.open(own_kafka, topics)
            try:
                left_open = await probe.left_open()
            finally:
                await probe.close()
            # The offsets are what a new scorer reads: left pending, they made the duplicates.
            hung += any(p.startswith("__consumer_offsets/") for p in left_open)
            steps.append(f"attempt {attempt}: frozen before EndTxn after {frozen} tries, leaderless seen "
                         f"{leaderless}, commit accepted {committed}, partitions left open {sorted(left_open)}")
            proc.start()
            await proc.wait_ready()
            if hung:
                break
        end = await finish(live, proc, PHASE)
        produced_by_then, sent, ledger, outputs, rc = end.produced_by_then, end.sent, end.ledger, end.outputs, end.rc
    report = ledger.report(outputs)
    print("\n" + "\n".join(steps) + f"\ncommit in the shutdown window: {report}")
    assert hung or not scorer_killed, "no commit left without markers: the window was missed, nothing was tested"
    assert sent > produced_by_then, (sent, produced_by_then)
    assert rc == 0, proc.log_tail()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[text.index("Traceback") - 500:][:4000]
    assert not report.problems(), report.problems()
    assert report.duplicate_count == 0, (report.duplicate_count, sorted(report.duplicates)[:10])


TRIES = 4


@dataclass
class _Probe:
    """Read-only views of the broker: last stable offset against high watermark of the
    outputs and of the group offsets, and who leads the outputs."""

    committed: AIOKafkaConsumer
    uncommitted: AIOKafkaConsumer
    outputs: list[TopicPartition]
    offsets: list[TopicPartition]

    @classmethod
    async def open(cls, kafka: KafkaBroker, topics: Topics) -> _Probe:
        readers = [AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=None, isolation_level=level,
                                    request_timeout_ms=5000, retry_backoff_ms=20)
                   for level in ("read_committed", "read_uncommitted")]
        for reader in readers:
            await reader.start()
        outputs = [TopicPartition(t, p) for t in topics.all_outputs() for p in range(3)]
        cluster = await readers[0]._client.fetch_all_metadata()
        offsets = [TopicPartition("__consumer_offsets", p)
                   for p in sorted(cluster.partitions_for_topic("__consumer_offsets") or ())]
        assert offsets, "the broker has no __consumer_offsets partitions yet"  # the scorer committed before
        return cls(readers[0], readers[1], outputs, offsets)

    async def _open(self, tps: list[TopicPartition]) -> set[TopicPartition]:
        stable, high = await asyncio.gather(self.committed.end_offsets(tps), self.uncommitted.end_offsets(tps))
        return {tp for tp in tps if high[tp] > stable[tp]}

    async def left_open(self) -> set[str]:
        """Partitions of the outputs and of the group offsets with a transaction open."""
        return {f"{tp.topic}/{tp.partition}" for tp in await self._open(self.outputs + self.offsets)}

    async def freeze_before_end_txn(self, proc: ScorerProcess) -> tuple[int, float]:
        """SIGSTOP the scorer while its transaction has written offsets (the group's offsets
        partition has an open transaction) and, 0.2 s later, still has: EndTxn not sent.
        Returns the tries and the events it had scored just before (a frozen process does
        not answer; a commit between that reading and the freeze would count as the
        frozen one's, so the attempt may be counted as a hit it was not)."""
        for tries in range(1, 2000):
            scored = proc.metric("scorer_events_scored_total")
            if await self._open(self.offsets):
                assert proc.pid is not None
                os.kill(proc.pid, signal.SIGSTOP)
                await asyncio.sleep(0.2)
                if await self._open(self.offsets):
                    return tries, scored
                os.kill(proc.pid, signal.SIGCONT)
        raise AssertionError("never caught the scorer between TxnOffsetCommit and EndTxn")

    async def wait_leaderless(self, stopping: asyncio.Task[None]) -> bool:
        """Until the broker, shutting down, names no leader for the outputs and the group
        offsets (False if it stopped answering first)."""
        client = self.committed._client
        while not stopping.done():
            try:
                cluster = await client.fetch_all_metadata()
            except Exception:  # the broker closed its listener: the window is over
                return False
            if all(cluster.leader_for_partition(tp) in (-1, None) for tp in self.outputs + self.offsets):
                return True
            await asyncio.sleep(0.005)
        return False

    async def close(self) -> None:
        await asyncio.gather(self.committed.stop(), self.uncommitted.stop(), return_exceptions=True)
