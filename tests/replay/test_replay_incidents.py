"""``scorer replay`` driving the incident stage: in process after the embedded scorer
(incidents.jsonl), and through Kafka (replay -> scorer -> ``python -m streams incidents``
-> incidents topic, read back by kcat)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from replay.cli import items
from replay.incidents import wait_incidents
from replay.player import Pacing
from replay.sinks import replay_to_kafka
from scorer.captures.recorded import Envelope, read_envelopes
from scorer.config import Settings
from scorer.demo import bundled_capture
from tests.incidents.kafka import JobProcess, kcat, scored_settings
from tests.support.kafka import KafkaBroker
from tests.support.ocsf_schema import assert_valid
from tests.support.paths import ROOT
from tests.support.pipeline import running_scorer, scorer_settings

pytestmark = pytest.mark.data  # the OCSF schema is read from ../shared/ocsf


def _latest(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The latest record of each incident (by its sequence), after checking the lifecycle."""
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in docs:
        by[d["metadata"]["correlation_uid"]].append(d)
    for uid, records in by.items():
        seqs = [r["metadata"]["sequence"] for r in records]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), uid
        assert records[0]["activity_id"] == 1, f"{uid} does not start with its Create"
        assert [r["activity_id"] for r in records].count(1) == 1
    return {uid: records[-1] for uid, records in by.items()}


def _members(latest: dict[str, dict[str, Any]]) -> list[str]:
    return [f["uid"] for d in latest.values() for f in d["finding_info_list"]]


def test_embedded_replay_runs_the_incident_stage(tmp_path: Path) -> None:
    out = tmp_path / "replay"
    env = {"SCORER_INCIDENTS__SAMPLE": "1000", "SCORER_INCIDENTS__QUIET_S": "600"}
    run = subprocess.run([sys.executable, "-m", "scorer.cli", "replay", str(bundled_capture()), "--to", "embedded",
                          "--fast", "--no-progress", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, env={**_env(), **env})
    assert run.returncode == 0, run.stderr
    docs = [json.loads(line) for line in (out / "incidents.jsonl").read_text().splitlines()]
    assert_valid(docs)
    latest = _latest(docs)
    assert all(d["activity_id"] == 3 for d in latest.values()), "the end of the replay closes every incident"
    alerts = {json.loads(line)["finding_info"]["uid"] for line in (out / "alerts.jsonl").read_text().splitlines()}
    members = _members(latest)  # the sample holds every member here (SAMPLE 1000)
    summary = json.loads((out / "summary.json").read_text())
    unattributed = summary["incidents"].get("findings_unattributed", 0)
    assert len(members) == len(set(members)) and set(members) <= alerts
    assert len(members) + unattributed == len(alerts) == sum(d["count"] for d in latest.values())
    assert summary["incidents"]["incidents"] == len(latest) < len(alerts)
    assert summary["outputs"]["incidents"] == str(out / "incidents.jsonl")

    skipped = subprocess.run([sys.executable, "-m", "scorer.cli", "replay", str(bundled_capture()), "--to",
                              "embedded", "--fast", "--no-progress", "--no-incidents", "--out", str(tmp_path / "b")],
                             cwd=ROOT, capture_output=True, text=True, timeout=600, env=_env())
    assert skipped.returncode == 0 and not (tmp_path / "b" / "incidents.jsonl").exists()


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SCORER_INCIDENTS__")}


def _accounted(bootstrap: str, settings: Settings) -> int:
    """Findings in the incidents so far (the latest record of each) plus dead letters."""
    latest: dict[str, dict[str, Any]] = {}
    for r in kcat(bootstrap, settings.incidents.topic):
        d = json.loads(r["payload"])
        latest[d["metadata"]["correlation_uid"]] = d
    return sum(int(d["count"]) for d in latest.values()) + len(kcat(bootstrap, settings.incidents.dead_letter))


async def _accounted_once_settled(bootstrap: str, settings: Settings, expected: int, quiet_s: float = 30.0) -> int:
    """:func:`_accounted` once it reaches ``expected``, or what it was after ``quiet_s`` without change."""
    seen, changed = -1, time.monotonic()
    while (n := _accounted(bootstrap, settings)) != expected:
        if n != seen:
            seen, changed = n, time.monotonic()
        elif time.monotonic() - changed > quiet_s:
            break
        await asyncio.sleep(0.5)
    return n


async def test_replay_through_kafka_scorer_and_incident_job(kafka: KafkaBroker, tmp_path: Path) -> None:
    settings = scored_settings(kafka, scorer_settings(kafka.bootstrap, scores=False), update_interval_s=0.0,
                               sample=1000)
    job = JobProcess(settings, tmp_path / "job.log")
    job.start()
    try:
        async with running_scorer(settings):
            # --wait with incidents: the scorer, then the incident job (on their observed progress).
            summary = await replay_to_kafka(settings, items([bundled_capture()], settings), Pacing(fast=True),
                                            tmp_path / "replay", wait_s=120, incidents=True)
        assert summary.scorer_caught_up and summary.events > 0
        assert summary.incidents_caught_up is True, job.log_tail()
        alerts = [e for e in read_envelopes(tmp_path / "replay" / "alerts.jsonl") if isinstance(e, Envelope)]
        assert alerts, "the scorer raised no alert on the bundled capture"
        uids = {json.loads(e.value or b"{}")["finding_info"]["uid"] for e in alerts}
        # Once the replay returned, every alert is in an incident or dead-lettered: visible to a
        # read_committed reader once the job's last transaction markers are written, which Kafka
        # does after the commit is answered. Read until all are, or nothing more comes for 30 s.
        accounted = await _accounted_once_settled(kafka.bootstrap, settings, len(uids))
        assert accounted == len(uids)
        # No incident job of another group ever ran: nothing to wait for (None), at once.
        other = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"group_id": "nobody"})})
        assert await wait_incidents(other, alerts, stall_s=600) is None
    finally:
        assert job.stop() == 0, job.log_tail()
    docs = [json.loads(r["payload"]) for r in kcat(kafka.bootstrap, settings.incidents.topic)]
    assert_valid(docs)
    latest = _latest(docs)
    members = _members(latest)
    dead = len(kcat(kafka.bootstrap, settings.incidents.dead_letter))
    assert len(members) == len(set(members)) and set(members) <= uids
    assert sum(d["count"] for d in latest.values()) + dead == len(uids)
    assert 0 < len(latest) < len(uids)
    print(f"\n{summary.events} events replayed, {len(uids)} alerts, {len(latest)} incidents, {dead} dead-lettered")
