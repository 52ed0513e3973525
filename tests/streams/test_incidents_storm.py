"""Hostile findings through the real job: a storm for one host with far-future times and
findings that name no entity mixed in keeps the job alive and its memory flat."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.incidents.findings import finding
from tests.incidents.kafka import JobProcess, Stall, decided, kcat, produce_findings, settings_for
from tests.support.faults import RssWatch, rss_bytes
from tests.support.kafka import KafkaBroker

pytestmark = [pytest.mark.slow]

WARMUP = 20_000
STORM = 200_000
FAR_FUTURE_EVERY = 1000
NO_ENTITY_EVERY = 997
T0 = 1_700_000_000.0


def storm(start: int, stop: int) -> Iterator[dict[str, Any]]:
    for i in range(start, stop):
        if i % NO_ENTITY_EVERY == NO_ENTITY_EVERY - 1:
            yield finding("edr", T0 + i * 0.001, uid=f"s-{i}")  # no host, address or user
        elif i % FAR_FUTURE_EVERY == FAR_FUTURE_EVERY - 1:
            yield finding("edr", 16_725_225_600.0 + i, host="victim", src_ip="10.0.0.1", uid=f"s-{i}")
        else:
            yield finding("edr", T0 + i * 0.001, host="victim", src_ip="10.0.0.1", user=f"u{i % 5000}",
                          rule=f"r{i % 300}", uid=f"s-{i}")


def _bad(n: int) -> int:
    return sum(1 for i in range(n) if i % NO_ENTITY_EVERY == NO_ENTITY_EVERY - 1)


async def _joined(job: JobProcess, n: int) -> None:
    stall = Stall("findings joined", 120, job.log_tail)
    while (joined := job.metric("scorer_incidents_findings_total", 'outcome="joined"')) < n:
        assert job.alive(), f"job exited\n{job.log_tail()}"
        stall.check((joined, job.log.stat().st_size))
        await asyncio.sleep(0.2)


async def test_a_storm_for_one_host_keeps_the_job_alive_and_its_memory_flat(kafka: KafkaBroker,
                                                                            tmp_path: Path) -> None:
    settings = settings_for(kafka, quiet_s=600.0)
    job = JobProcess(settings, tmp_path / "job.log")
    job.start()
    try:
        await produce_findings(kafka.bootstrap, settings, storm(0, WARMUP))
        await _joined(job, WARMUP - _bad(WARMUP))
        assert job.proc is not None
        warm = rss_bytes(job.proc.pid)
        with RssWatch(lambda: job.proc.pid if job.alive() else None) as watch:  # type: ignore[union-attr]
            await produce_findings(kafka.bootstrap, settings, storm(WARMUP, STORM))
            await _joined(job, STORM - _bad(STORM))
        implausible = job.metric("scorer_incidents_findings_total", 'outcome="implausible_time"')
        dead = job.metric("scorer_incidents_findings_total", 'outcome="dead_lettered"')
        open_now = job.metric("scorer_incidents_open_episodes")
        assert job.alive()
        assert job.stop() == 0, job.log_tail()  # SIGTERM: a clean stop
    finally:
        job.stop()
    growth_mb = watch.peak_mb - warm / 2**20
    print(f"\nRSS {warm / 2**20:.0f} MB after {WARMUP} findings, peak {watch.peak_mb:.0f} MB over {STORM}: "
          f"+{growth_mb:.1f} MB")
    assert growth_mb < 20, "memory grew with the storm"  # 180k members kept would be ~40 MB
    assert implausible == sum(1 for i in range(STORM) if i % FAR_FUTURE_EVERY == FAR_FUTURE_EVERY - 1
                              and i % NO_ENTITY_EVERY != NO_ENTITY_EVERY - 1)
    assert dead == _bad(STORM)
    assert open_now == 1
    await decided(settings, settings.incidents.topic)
    records = [json.loads(r["payload"]) for r in kcat(kafka.bootstrap, settings.incidents.topic)]
    assert Counter(r["activity_name"] for r in records)["Create"] == 1
    assert len(records) < 40  # Updates follow the incident's story, not its volume
    last = records[-1]
    assert last["end_time"] < int((T0 + STORM * 0.001 + 1) * 1000)  # no far-future time in it
    assert len(last["finding_info_list"]) == settings.incidents.sample
    assert len(last["observables"]) <= 3 * settings.incidents.max_items
