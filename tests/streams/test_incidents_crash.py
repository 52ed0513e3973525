"""kill -9 of the incident job mid-stream, again and again: no incident lost, no incident
uid minted twice, no finding counted twice or missing, at most a repeated Update.

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

Reproduce: SCORER_RELIABILITY_SEED=<seed printed> pytest -s tests/streams/test_incidents_crash.py
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.incidents.findings import finding
from tests.incidents.kafka import JobProcess, committed_to_end, kcat, produce_findings, settings_for
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


async def test_kill_9_loses_no_incident_and_mints_no_uid_twice(kafka: KafkaBroker, tmp_path: Path) -> None:
    rng = random.Random(seed())
    settings = settings_for(kafka, quiet_s=30.0, update_interval_s=1.0, sample=2 * PER_HOST)
    alerts = [settings.topics.alert_topic(k) for k in settings.kinds]
    job = JobProcess(settings, tmp_path / "job.log", "--idle-s", "1", "--max-records", "100")
    kills_done = asyncio.Event()
    blocks = 0

    async def feed() -> None:
        nonlocal blocks
        while True:
            last = kills_done.is_set()
            await produce_findings(kafka.bootstrap, settings, block(blocks))
            blocks += 1
            await committed_to_end(kafka.bootstrap, f"{settings.kafka.group_id}-incidents-router", alerts,
                                   alive=job.alive)
            if last:
                return

    async def crash() -> None:
        for _ in range(KILLS):
            deadline = time.monotonic() + 120
            while job.metric("scorer_incidents_batches_total", 'stage="correlator"') < 2:
                assert time.monotonic() < deadline, f"no correlator progress\n{job.log_tail()}"
                assert job.alive(), f"job exited\n{job.log_tail()}"
                await asyncio.sleep(0.05)
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            job.kill()
            job.start()
        kills_done.set()

    job.start()
    try:
        await asyncio.gather(feed(), crash())
        # The last block closes by idle time: wait for every incident's Close.
        expected = {(f"host:host{h:02d}", int((T0 + b * BLOCK_S) * 1000)) for b in range(blocks) for h in range(HOSTS)}
        deadline = time.monotonic() + 120
        while (closed_n := job.metric("scorer_incidents_records_total", 'activity="close"')) < HOSTS:
            assert time.monotonic() < deadline, f"{closed_n} closes\n{job.log_tail()}"
            await asyncio.sleep(0.2)
        records = [json.loads(r["payload"]) for r in kcat(kafka.bootstrap, settings.incidents.topic)]
        while sum(r["activity_id"] == 3 for r in records) < len(expected):
            assert time.monotonic() < deadline, "not every incident closed"
            await asyncio.sleep(0.5)
            records = [json.loads(r["payload"]) for r in kcat(kafka.bootstrap, settings.incidents.topic)]
    finally:
        job.stop()

    log = job.log.read_text()
    assert job.starts == KILLS + 1
    assert re.search(r"restored partition \d+: [1-9]\d* open episodes", log), "no kill left open episodes to restore"
    assert_valid(records)

    by_uid: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_uid[r["metadata"]["correlation_uid"]].append(r)
    closes = [r for r in records if r["activity_id"] == 3]
    # One incident per (host, block), each with one uid: none lost, none minted twice.
    episodes = Counter((r["unmapped"]["incident"]["key"], r["start_time"]) for r in closes)
    assert set(episodes) == expected
    assert set(episodes.values()) == {1}
    assert len(by_uid) == len(expected)
    repeated_updates = 0
    for uid, rs in by_uid.items():
        activities = Counter(r["activity_id"] for r in rs)
        assert (activities[1], activities[3]) == (1, 1), uid  # one Create, one Close
        sequences = Counter(r["metadata"]["sequence"] for r in rs)
        repeated_updates += sum(n - 1 for n in sequences.values())
    assert repeated_updates <= KILLS  # transactions make it 0; the contract allows one per kill
    # Every finding joined exactly one incident, once.
    members = Counter(f["uid"] for r in closes for f in r["finding_info_list"])
    produced = {f["finding_info"]["uid"] for b in range(blocks) for f in block(b)}
    assert set(members) == produced
    assert set(members.values()) == {1}
    assert all(r["count"] == PER_HOST for r in closes)
    print(f"\n{blocks} blocks, {len(produced)} findings, {len(expected)} incidents, {KILLS} kills, "
          f"{repeated_updates} repeated records")
