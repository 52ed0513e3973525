"""``scorer replay`` driving the incident stage: in process after the embedded scorer
(incidents.jsonl), and through Kafka (replay -> scorer -> ``python -m streams incidents``
-> incidents topic, read back by kcat)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from replay.cli import items
from replay.incidents import wait_incidents
from replay.player import Pacing
from replay.sinks import replay_to_kafka
from scorer.captures.recorded import Envelope, read_envelopes
from scorer.config import Settings
from scorer.demo import bundled_capture
from scorer.kafka import admin_client, make_consumer, make_producer, poll_until
from streams.incidents.kafka import ensure_incident_topics
from tests.incidents.kafka import JobProcess, kcat, scored_settings, settings_for
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
        # Once the replay returned, every alert is in an incident or dead-lettered, and visible to
        # a read_committed reader at once: the wait covers the markers of the job's last
        # transactions too (CI run 14 read 1587 of 1894 here before it did).
        assert _accounted(kafka.bootstrap, settings) == len(uids)
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


async def _batch(producer: AIOKafkaProducer, tp: TopicPartition, n: int) -> None:
    for i in range(n):
        await producer.send_and_wait(tp.topic, b"digest %d" % i, key=b"host", partition=tp.partition)


async def test_wait_incidents_waits_for_the_markers_of_the_routers_last_batch(kafka: KafkaBroker) -> None:
    """The window of CI run 14, held open: the router's offsets are committed and its last
    batch is on the keyed partition, without markers yet (to a read_committed reader an open
    transaction is the same); the correlator has committed all before that batch. The keyed
    topic's read_committed end then stops before the batch, and "committed past the end"
    held one batch early."""
    settings = settings_for(kafka)
    await ensure_incident_topics(settings.kafka, settings.incidents)
    group = f"{settings.kafka.group_id}-incidents"
    alert = TopicPartition(settings.topics.alert_topic(settings.kinds[0]), 0)
    keyed = TopicPartition(settings.incidents.keyed_topic, 0)
    alerts = [Envelope(alert.topic, alert.partition, 0, 0)]
    router = make_producer(settings.kafka, transactional_id=f"{group}-router-0")
    correlator = make_producer(settings.kafka, transactional_id=f"{group}-correlator-0")
    await router.start()
    await correlator.start()
    try:
        async with router.transaction():  # a batch the correlator read: digests 0-2, marker 3
            await _batch(router, keyed, 3)
        async with correlator.transaction():
            await correlator.send_offsets_to_transaction({keyed: 3}, f"{group}-correlator")
        await _offsets_visible(settings, f"{group}-correlator", {keyed: 3})
        await router.begin_transaction()  # the last batch: the alert routed to digests 4-6
        await _batch(router, keyed, 3)
        # Its offsets as they are once its commit is answered (visible before its markers on
        # the keyed partition are written): committed here by another producer, as the open
        # transaction's own would not be visible yet.
        async with correlator.transaction():
            await correlator.send_offsets_to_transaction({alert: 1}, f"{group}-router")
        await _offsets_visible(settings, f"{group}-router", {alert: 1})
        assert await wait_incidents(settings, alerts, stall_s=2) is False, "caught up before the last batch"
        await router.commit_transaction()  # marker 7
        # Now decided, and the correlator still has not read it.
        assert await wait_incidents(settings, alerts, stall_s=2) is False
        async with correlator.transaction():
            await correlator.send_offsets_to_transaction({keyed: 7}, f"{group}-correlator")
        assert await wait_incidents(settings, alerts, stall_s=60) is True
    finally:
        await router.stop()
        await correlator.stop()


async def _offsets_visible(settings: Settings, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Until a transaction's offsets commit is visible to an offset fetch: the coordinator
    writes its marker after answering EndTxn, and a busy broker showed none yet (then
    wait_incidents sees no router group and answers None, "no incident job")."""
    async with admin_client(settings.kafka) as admin:
        async def committed() -> dict[TopicPartition, int]:
            return {tp: m.offset for tp, m in (await admin.list_consumer_group_offsets(group)).items()}

        seen = await poll_until(committed, lambda c: all(c.get(tp) == o for tp, o in offsets.items()), stall_s=60)
        assert seen is not None, f"{group} never showed {offsets}"


async def test_wait_incidents_waits_for_a_router_that_has_joined_but_not_committed(kafka: KafkaBroker) -> None:
    """An incident job that has just started: its router is a member of its group and has
    committed nothing yet. That is a job to wait for (False once it stalls), not "no incident
    job" (None), which a replay started right after the job would have taken as done."""
    settings = settings_for(kafka)
    await ensure_incident_topics(settings.kafka, settings.incidents)
    group = f"{settings.kafka.group_id}-incidents-router"
    alert = TopicPartition(settings.topics.alert_topic(settings.kinds[0]), 0)
    alerts = [Envelope(alert.topic, alert.partition, 0, 0)]
    assert await wait_incidents(settings, alerts, stall_s=600) is None, "no member, no commit: no job"
    # The router's stand-in: a member of its group (on a topic that exists) that commits nothing.
    member = make_consumer(settings.kafka.model_copy(update={"group_id": group}), [settings.incidents.keyed_topic])
    await member.start()
    try:
        async def joined() -> int:
            await member.getmany(timeout_ms=100)
            return len(member.assignment())

        assert await poll_until(joined, bool, stall_s=60), "the router stand-in never joined its group"
        assert await wait_incidents(settings, alerts, stall_s=2) is False
    finally:
        await member.stop()
