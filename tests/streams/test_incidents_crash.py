"""kill -9 of the incident job mid-stream, again and again, and partitions moving between
two processes: no incident lost, no incident uid minted twice, no finding counted twice or
missing, at most a repeated Update.

The stream is blocks of findings: in block ``b`` every one of ``HOSTS`` hosts raises
``PER_HOST`` findings within a few seconds, and blocks are far apart in finding time, so
the expected incidents are known by construction: one per (host, block), holding exactly
that block's findings of that host. Each block is produced only once the router has
committed the previous one (observed from outside, through the group's offsets), which
keeps every host's findings in time order on the keyed topic whatever the machine's speed.
Kills are scheduled on observed progress: each waits until the restarted process has
committed correlator batches of its own, then a random few hundred milliseconds (so some
kills land inside a transaction). Feeding goes on until the last kill is done, then one
more block, which no killed process can have seen.

The rebalance test runs two processes of one group: the second joins (the partitions split
and its share is restored from the changelog the first wrote), the first is killed (its
share moves over), then comes back (and the partitions split again).

Reproduce: SCORER_RELIABILITY_SEED=<seed printed> pytest -s tests/streams/test_incidents_crash.py
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from tests.incidents.findings import finding
from tests.incidents.kafka import JobProcess, Stall, committed_to_end, kcat, produce_findings, settings_for
from tests.support.faults import seed
from tests.support.kafka import KafkaBroker
from tests.support.ocsf_schema import assert_valid

pytestmark = [pytest.mark.data, pytest.mark.slow]

HOSTS = 30
PER_HOST = 20
KILLS = 3
T0 = 1_700_000_000.0
BLOCK_S = 1000.0  # finding time between blocks, far beyond the quiet period


def block(b: int) -> list[dict[str, Any]]:
    """Block ``b``: host h's findings on one kind (EDR for even hosts, SIEM for odd), 0.2 s apart."""
    return [finding("edr" if h % 2 == 0 else "siem", T0 + b * BLOCK_S + i * 0.2, host=f"host{h:02d}",
                    src_ip=f"10.1.{h}.1", uid=f"f-{b}-{h}-{i}", tactics=("execution",) if i == 0 else ())
            for i in range(PER_HOST) for h in range(HOSTS)]


class Run:
    """One test's stream, processes and outputs."""

    def __init__(self, kafka: KafkaBroker, tmp_path: Path, instances: int) -> None:
        self.kafka = kafka
        self.settings = settings_for(kafka, quiet_s=30.0, update_interval_s=1.0, sample=2 * PER_HOST)
        self.jobs = [JobProcess(self.settings, tmp_path / f"job{i}.log", "--idle-s", "1", "--max-records", "100",
                                instance=str(i)) for i in range(instances)]
        self.faults_done = asyncio.Event()
        self.blocks = 0
        self.restarts = self.republished = 0

    def alive(self) -> bool:
        return any(j.alive() for j in self.jobs)

    async def feed(self) -> None:
        """Block after block, each once the router committed the one before; one more after the faults."""
        alerts = [self.settings.topics.alert_topic(k) for k in self.settings.kinds]
        while True:
            last = self.faults_done.is_set()
            if self.restarts > self.republished and self.blocks:
                # As the at-least-once scorer does after a crash of its own: the last block again,
                # same uids, new offsets. The restarted stage must remember them (its changelog).
                self.republished = self.restarts
                await produce_findings(self.kafka.bootstrap, self.settings, block(self.blocks - 1))
            await produce_findings(self.kafka.bootstrap, self.settings, block(self.blocks))
            self.blocks += 1
            await committed_to_end(self.kafka.bootstrap, f"{self.settings.kafka.group_id}-incidents-router", alerts,
                                   alive=self.alive)
            if last:
                return

    @staticmethod
    async def progress(job: JobProcess, batches: int = 2) -> None:
        """Until ``job`` (this incarnation) has committed ``batches`` correlator batches."""
        stall = Stall("correlator batches of the restarted job", 120, job.log_tail)
        while (done := job.metric("scorer_incidents_batches_total", 'stage="correlator"')) < batches:
            stall.check((done, job.log.stat().st_size))  # its log moves while it joins and restores
            assert job.alive(), f"job exited\n{job.log_tail()}"
            await asyncio.sleep(0.05)

    def incidents(self) -> list[dict[str, Any]]:
        return [json.loads(r["payload"]) for r in kcat(self.kafka.bootstrap, self.settings.incidents.topic)]

    async def closed(self) -> list[dict[str, Any]]:
        """Every incident record, once every expected incident has its Close (the last block
        closes by idle time)."""
        stall = Stall("incident records while waiting for every Close", 120)
        while True:
            records = self.incidents()
            if sum(r["activity_id"] == 3 for r in records) >= len(self.expected()):
                return records
            stall.check(len(records))
            await asyncio.sleep(0.5)

    def expected(self) -> set[tuple[str, int]]:
        return {(f"host:host{h:02d}", int((T0 + b * BLOCK_S) * 1000)) for b in range(self.blocks) for h in range(HOSTS)}

    def stop(self) -> None:
        for job in self.jobs:
            job.stop()

    async def drive(self, faults: Awaitable[None]) -> list[dict[str, Any]]:
        """The first process started, the stream fed while ``faults`` run, then every record
        once every incident closed."""
        async def then_done() -> None:
            await faults
            self.faults_done.set()

        self.jobs[0].start()
        try:
            await asyncio.gather(self.feed(), then_done())
            return await self.closed()
        finally:
            self.stop()

    def check(self, records: list[dict[str, Any]], faults: int) -> int:
        """The incidents are exactly the expected ones; returns the repeated records."""
        assert_valid(records)
        by_uid: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            by_uid[r["metadata"]["correlation_uid"]].append(r)
        closes = [r for r in records if r["activity_id"] == 3]
        # One incident per (host, block), each with one uid: none lost, none minted twice.
        episodes = Counter((r["unmapped"]["incident"]["key"], r["start_time"]) for r in closes)
        assert set(episodes) == self.expected()
        assert set(episodes.values()) == {1}
        assert len(by_uid) == len(self.expected())
        repeated = 0
        for uid, rs in by_uid.items():
            activities = Counter(r["activity_id"] for r in rs)
            assert (activities[1], activities[3]) == (1, 1), uid  # one Create, one Close
            sequences = Counter(r["metadata"]["sequence"] for r in rs)
            repeated += sum(n - 1 for n in sequences.values())
        assert repeated <= faults  # transactions make it 0; the contract allows a repeated Update per kill
        # Every finding joined exactly one incident, once.
        members = Counter(f["uid"] for r in closes for f in r["finding_info_list"])
        produced = {f["finding_info"]["uid"] for b in range(self.blocks) for f in block(b)}
        assert set(members) == produced
        assert set(members.values()) == {1}
        assert all(r["count"] == PER_HOST for r in closes)
        print(f"\n{self.blocks} blocks, {len(produced)} findings, {len(self.expected())} incidents, "
              f"{faults} kills, {repeated} repeated records")
        return repeated


RESTORED = re.compile(r"restored partition \d+: [1-9]\d* open episodes")


async def test_kill_9_loses_no_incident_and_mints_no_uid_twice(kafka: KafkaBroker, tmp_path: Path) -> None:
    rng = random.Random(seed())
    run = Run(kafka, tmp_path, 1)
    (job,) = run.jobs

    async def crash() -> None:
        for _ in range(KILLS):
            await run.progress(job)
            await asyncio.sleep(rng.uniform(0.0, 0.3))  # some kills land inside a transaction
            job.kill()
            job.start()
            run.restarts += 1

    records = await run.drive(crash())
    assert job.starts == KILLS + 1
    assert RESTORED.search(job.log.read_text()), "no kill left open episodes to restore"
    run.check(records, KILLS)


async def test_partitions_move_between_processes_with_their_episodes(kafka: KafkaBroker, tmp_path: Path) -> None:
    rng = random.Random(seed())
    run = Run(kafka, tmp_path, 2)
    first, second = run.jobs

    async def rebalance() -> None:
        await run.progress(first)
        second.start()  # joins: the partitions split, its share restored from the changelog
        await run.progress(second)
        await asyncio.sleep(rng.uniform(0.0, 0.3))
        first.kill()  # its share moves to the second
        await run.progress(second, 4)
        first.start()  # and back
        run.restarts += 1
        await run.progress(first)

    records = await run.drive(rebalance())
    assert RESTORED.search(second.log.read_text()), "the second process restored no open episode"
    run.check(records, 1)
