"""The incident job on a real broker: findings of three kinds in, OCSF Incident Findings out,
read by kcat (an independent client); suppression, dead letters and hostile times."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import generate_latest

from scorer.config import Settings
from streams.incidents.job import IncidentJob
from streams.incidents.stage import JobSettings
from tests.incidents.findings import finding
from tests.incidents.kafka import Stall, decided, kcat, produce_findings, produce_raw, scored_settings, settings_for
from tests.support.kafka import KafkaBroker
from tests.support.ocsf_schema import assert_valid
from tests.support.pipeline import produce, running_job, running_scorer, scorer_settings
from tests.support.samples import SAMPLES

pytestmark = pytest.mark.data  # the OCSF schema is read from ../shared/ocsf

T0 = 1_700_000_000.0


def running(settings: Settings) -> contextlib.AbstractAsyncContextManager[IncidentJob]:
    return running_job(IncidentJob(JobSettings.from_settings(settings, idle_s=0.5, max_records=256)))


async def eventually(count: Callable[[], float], target: float, what: str) -> None:
    """Until ``count()`` reaches ``target``; fails once it has not moved for 60 s."""
    stall = Stall(what)
    while (n := count()) < target:
        stall.check(n)
        await asyncio.sleep(0.1)


def by_incident(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        doc = json.loads(r["payload"])
        assert r["key"] == doc["metadata"]["correlation_uid"]  # keyed by incident uid
        out[r["key"]].append(doc)
    return out


async def test_findings_of_three_kinds_become_valid_incidents_read_by_kcat(kafka: KafkaBroker) -> None:
    settings = settings_for(kafka, quiet_s=3.0, update_interval_s=0.0, sample=8)
    cfg = settings.incidents
    boot = kafka.bootstrap
    kafka.create_topic(cfg.suppressions_topic, partitions=1, config={"cleanup.policy": "compact"})
    await produce_raw(boot, cfg.suppressions_topic, [(b"mute-noisy", json.dumps(
        {"id": "mute-noisy", "entity": "host:web1", "rule": "r-noisy", "reason": "known admin tool"}).encode())])
    first = finding("siem", T0, host="web1", src_ip="10.0.0.5", tactics=("discovery",), severity_id=2)
    story = [
        finding("netflow", T0 + 1, src_ip="10.0.0.5", dst_ip="10.0.0.99", layout="1.3"),
        finding("edr", T0 + 2, host="WEB1", user="www", tactics=("execution",), rule="r1", severity_id=4),
        finding("edr", T0 + 2.5, host="web1", rule="r-noisy"),  # suppressed
        finding("edr", 16_725_225_600.0, host="web1"),  # year 2500: joins at the watermark
        *[finding("netflow", T0 + 1 + i * 0.5, src_ip="192.0.2.1", dst_ip=f"198.51.100.{i}") for i in range(30)],
        finding("edr", T0 + 3, src_ip=None),  # names no entity: dead letter
    ]
    later = finding("siem", T0 + 100, host="web1", src_ip="10.0.0.5")
    async with running(settings) as job:
        await produce_findings(boot, settings, [first])
        await eventually(lambda: job.counts.get("links", 0), 1, "the router learned web1's address")
        await produce_findings(boot, settings, story)
        await produce_raw(boot, settings.topics.alerts_prefix + "siem", [(b"x", b"{not json")])
        await eventually(lambda: job.correlator.stats["joined"], 34, "every good finding joined")
        await produce_findings(boot, settings, [later])
        await eventually(lambda: job.correlator.stats["closed"], 3, "three incidents closed")
        metrics = generate_latest(job.registry).decode()
    await decided(settings, cfg.topic, cfg.suppressed_topic, cfg.dead_letter)

    incidents = by_incident(kcat(boot, cfg.topic))
    docs = [d for ds in incidents.values() for d in ds]
    assert_valid(docs)
    assert len(incidents) == 3
    for uid, ds in incidents.items():
        assert (ds[0]["activity_name"], ds[-1]["activity_name"]) == ("Create", "Close"), uid
        assert [d["metadata"]["sequence"] for d in ds] == list(range(1, len(ds) + 1))  # none lost, none twice
    closed = {d["unmapped"]["incident"]["key"] + f"@{d['start_time']}": d for d in docs if d["activity_id"] == 3}
    web1 = closed[f"host:web1@{int(T0 * 1000)}"]
    assert web1["unmapped"]["incident"]["kinds"] == {"siem": 1, "netflow": 1, "edr": 2}
    assert web1["count"] == 4
    assert web1["end_time"] < int((T0 + 10) * 1000)  # the year-2500 finding did not stretch it
    assert [a["tactic"]["uid"] for a in web1["attacks"] if "tactic" in a] == ["TA0007", "TA0002"]
    assert web1["severity_id"] == 5  # High, raised by three kinds and two tactics
    scan = closed[f"ip:192.0.2.1@{int((T0 + 1) * 1000)}"]
    assert scan["count"] == 30
    assert len(scan["finding_info_list"]) == cfg.sample  # a bounded sample of 30
    assert closed[f"host:web1@{int((T0 + 100) * 1000)}"]["count"] == 1

    published = {json.loads(r["payload"])["finding_info"]["uid"]
                 for kind in settings.kinds for r in kcat(boot, settings.topics.alert_topic(kind))
                 if r["payload"].startswith("{\"")}
    members = {f["uid"] for d in docs for f in d["finding_info_list"]}
    assert members <= published  # every member finding is reachable on the alert topics
    noisy = story[2]["finding_info"]["uid"]
    assert noisy not in members

    suppressed = [json.loads(r["payload"]) for r in kcat(boot, cfg.suppressed_topic)]
    assert [(s["finding_uid"], s["suppression"]["reason"]) for s in suppressed] == [(noisy, "known admin tool")]
    reasons = sorted(r["headers"][r["headers"].index("scorer.dlq.reason") + 1] for r in kcat(boot, cfg.dead_letter))
    assert reasons == ["bad_finding", "unattributed"]
    assert 'scorer_incidents_findings_total{outcome="implausible_time"} 1.0' in metrics
    assert 'scorer_incidents_findings_total{outcome="suppressed"} 1.0' in metrics
    assert 'scorer_incidents_records_total{activity="create"} 3.0' in metrics


async def test_the_scorers_own_alerts_on_real_data_become_incidents(kafka: KafkaBroker) -> None:
    """Real samples of every kind through the scorer (in process, ONNX Runtime) and the
    incident job side by side on one broker: whatever the scorer alerts on is accounted
    for in exactly one incident or as a dead letter, and every incident is valid OCSF."""
    settings = scored_settings(kafka, scorer_settings(kafka.bootstrap, scores=False), update_interval_s=0.0, sample=4)
    produced = {k: f() for k, f in SAMPLES.items()}
    total = sum(len(v) for v in produced.values())
    boot = kafka.bootstrap
    alert_topics = [settings.topics.alert_topic(k) for k in settings.kinds]
    async with running(settings) as job:
        async with running_scorer(settings) as (_, metrics):
            for kind, sample in produced.items():
                await produce(boot, getattr(settings.topics, kind.value), [(k, v) for _, k, v in sample])
            await eventually(lambda: sum(metrics.accounting.consumed.values()), total, "the scorer consumed all")
        # Stopped: every alert it raises is written (consumed is counted before the alert is).
        await decided(settings, *alert_topics)
        alerts = [json.loads(r["payload"]) for t in alert_topics for r in kcat(boot, t)]
        assert alerts, "the scorer raised no alert on the samples"
        await eventually(lambda: job.correlator.stats["joined"] + job.counts.get("dead_lettered", 0), len(alerts),
                         "every alert routed and joined")
    await decided(settings, settings.incidents.topic, settings.incidents.dead_letter)
    incidents = by_incident(kcat(boot, settings.incidents.topic))
    latest = [ds[-1] for ds in incidents.values()]
    assert_valid(d for ds in incidents.values() for d in ds)
    alert_uids = {a["finding_info"]["uid"] for a in alerts}
    members = [f["uid"] for d in latest for f in d["finding_info_list"]]
    assert set(members) <= alert_uids
    assert len(members) == len(set(members))  # a finding is in one incident
    dead = len(kcat(boot, settings.incidents.dead_letter))
    assert sum(d["count"] for d in latest) + dead == len(alerts)
    assert len(incidents) < len(alerts)
    print(f"\n{total} events, {len(alerts)} alerts, {len(incidents)} incidents, {dead} dead-lettered")
