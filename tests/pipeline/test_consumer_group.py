"""Scale-out on Kafka's own mechanism: `scorer run` processes in one consumer group.

Two processes start and both take partitions (each must have consumed before anything
else happens); a third joins mid-stream (a rebalance), then the first is killed (SIGKILL,
another rebalance) and the others take over its partitions. Every input event must have a
score afterwards (at-least-once: duplicates allowed, none missing), and each survivor's
/metrics must show the accounting invariant consumed = scored + dead-lettered.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from scorer.events.structs import EventKind
from tests.support.faults import ScorerProcess, new_topics, scorer_env
from tests.support.kafka import KafkaBroker
from tests.support.pipeline import consume, produce
from tests.support.samples import SAMPLES

pytestmark = pytest.mark.data

CONSUMED = "scorer_events_consumed_total"


async def _until_consumed(proc: ScorerProcess, name: str, timeout: float = 60.0) -> float:
    """Wait until ``proc`` has consumed something: proof it holds partitions."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = await asyncio.to_thread(proc.metric, CONSUMED)
        if n > 0:
            return n
        await asyncio.sleep(0.2)
    raise AssertionError(f"scorer {name} consumed nothing in {timeout}s:\n{proc.log_tail()}")


def _invariant(proc: ScorerProcess) -> tuple[float, float, float]:
    return (proc.metric(CONSUMED), proc.metric("scorer_events_scored_total"),
            proc.metric("scorer_events_dead_lettered_total"))


async def test_processes_join_and_leave_mid_stream_lose_nothing(kafka: KafkaBroker, tmp_path: Path) -> None:
    topics = await new_topics(kafka, list(EventKind), partitions=6)
    procs = {
        name: ScorerProcess(scorer_env(kafka.bootstrap, topics, SCORER_KAFKA__CLIENT_ID=name), tmp_path / f"{name}.log")
        for name in ("a", "b", "c")
    }
    a, b, c = procs["a"], procs["b"], procs["c"]
    expected: set[str] = set()

    async def send_round(rnd: int) -> None:
        for kind, sample_of in SAMPLES.items():
            records = []
            for uid, key, value in sample_of():
                doc = json.loads(value)
                doc["uid"] = f"{uid}#{rnd}"
                expected.add(doc["uid"])
                records.append((key, json.dumps(doc).encode()))
            await produce(kafka.bootstrap, topics.input(kind), records)

    try:
        a.start()
        b.start()
        await asyncio.gather(a.wait_ready(), b.wait_ready())
        await send_round(0)
        await asyncio.gather(_until_consumed(a, "a"), _until_consumed(b, "b"))
        for rnd in range(1, 7):
            await send_round(rnd)
            if rnd == 2:
                c.start()  # joins mid-stream: partitions move from a and b while they score
                await c.wait_ready()
                await send_round(100)
                await _until_consumed(c, "c")
            if rnd == 4:
                a.kill()  # mid-stream, batches possibly in flight, offsets uncommitted
            await asyncio.sleep(0.3)
        scores = await consume(
            kafka.bootstrap, topics.scores, len(expected), timeout=120,
            done=lambda got: expected <= {json.loads(m.value)["uid"] for m in got},
        )
        for name, proc in (("b", b), ("c", c)):
            assert (await asyncio.to_thread(proc.get, "/healthz"))[0] == 200, name
            assert (await asyncio.to_thread(proc.get, "/readyz"))[0] == 200, name
        await asyncio.sleep(1.5)  # the last acks are committed and counted
        counts = {name: await asyncio.to_thread(_invariant, proc) for name, proc in (("b", b), ("c", c))}
        owned = {name: await asyncio.to_thread(proc.metric, "scorer_assigned_partitions") for name, proc in
                 (("b", b), ("c", c))}
        assignments = {name: await asyncio.to_thread(proc.metric, "scorer_partition_assignments_total")
                       for name, proc in (("b", b), ("c", c))}
    finally:
        codes = {name: proc.stop() if proc.proc is not None else None for name, proc in procs.items()}
    seen = [json.loads(m.value)["uid"] for m in scores]
    print(f"\n{len(expected)} events, {len(seen)} scores, survivors (consumed, scored, dead-lettered): {counts}")
    missing = expected - set(seen)
    assert not missing, f"{len(missing)} events never scored, e.g. {sorted(missing)[:5]}"
    for name, (consumed, scored, dead) in counts.items():
        assert consumed > 0 and consumed == scored + dead, (name, consumed, scored, dead)
    # a's partitions went to the survivors: between them they own every input partition. b had a set
    # at its start, at c's join and at a's death; c at its join and at a's death (on /metrics, per process).
    assert sum(owned.values()) == len(EventKind) * 6, owned
    assert assignments["b"] >= 3 and assignments["c"] >= 2, assignments
    assert codes["b"] == 0, b.log_tail()
    assert codes["c"] == 0, c.log_tail()
    assert codes["a"] == -9
