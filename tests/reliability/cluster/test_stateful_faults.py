"""The stateful jobs on the three-broker cluster under leader loss (issue 19, item 4).

The profile worker (``python -m streams``) keeps each entity's profile in a compacted topic
(``<prefix>profiles.<kind>``, replication 3 here, min.insync.replicas 2) that is also its
changelog: a partition's state is restored from it. While events stream in at a fixed rate,
the leader of the busiest profile partition is killed (-9) once the worker has committed a
seeded number of events, the worker must go on committing without it, is then killed (-9)
itself and started again (restoring every partition's state from the profile topics, one of
them on its new leader) and must go on again, the broker comes back and catches up, and at
the end every profile in the topic must equal the offline recomputation of the same events
(scorer.profiles.local): nothing lost, nothing counted twice.

Every step waits for observed progress (input records the worker committed), not for time.

Reproduce:
    SCORER_CLUSTER_TESTS=1 SCORER_RELIABILITY_SEED=<seed> pytest -s tests/reliability/cluster/test_stateful_faults.py
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from scorer.config import KafkaSettings, ProfileSettings, Settings, TopicSettings
from scorer.events.structs import Event, EventKind, entity_key
from scorer.kafka import COMPACTED
from scorer.profiles.schema import topic_for
from tests.lifecycle.test_live import clone_version
from tests.profiles.test_topic_profiles import (
    WorkerProcess,
    _committed,
    _committed_at_least,
    _drained,
    _offline_state,
    _sample,
    _topic_state,
)
from tests.reliability.cluster.live import STALL_S, Run, UpstreamProducer, check, live_run
from tests.support.cli import scorer_cli
from tests.support.cluster import KafkaCluster
from tests.support.faults import seed, usable_kinds
from tests.support.paths import MODEL_REPOSITORY

pytestmark = [pytest.mark.data, pytest.mark.slow]

KINDS = (EventKind.NETFLOW, EventKind.SIEM)
PARTITIONS = 3
RATE = 200.0  # events per second, both kinds together


async def _publish(cluster: KafkaCluster, settings: Settings, sample: Mapping[EventKind, Sequence[Event]],
                   progress: list[int]) -> None:
    """Every event of ``sample`` at about RATE, keyed by entity and in time order per kind (as
    a SOC pipeline publishes), idempotent and riding out the killed broker; ``progress[0]``
    counts what the cluster acknowledged."""
    producer = UpstreamProducer(bootstrap_servers=cluster.bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5)
    await producer.start()
    chunk = int(RATE / 10)
    rows = [(getattr(settings.topics, kind.value), e) for kind in KINDS for e in sample[kind]]
    # Interleave the kinds, each still in its own time order.
    rows.sort(key=lambda row: row[1].ts)
    try:
        for i in range(0, len(rows), chunk):
            started = time.monotonic()
            futures = [await producer.send(topic, msgspec.json.encode(e), key=entity_key(e).encode())
                       for topic, e in rows[i:i + chunk]]
            await asyncio.gather(*futures)
            progress[0] += len(futures)
            await asyncio.sleep(max(0.0, chunk / RATE - (time.monotonic() - started)))
    finally:
        await producer.stop()


async def _busiest_profile_partition(cluster: KafkaCluster, settings: Settings) -> tuple[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=cluster.bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic_for(settings.profiles.topic_prefix, k), p)
               for k in KINDS for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    busiest = max(tps, key=lambda tp: ends[tp])
    return busiest.topic, busiest.partition


async def test_profile_worker_through_the_loss_of_a_profile_leader(cluster: KafkaCluster, tmp_path: Path) -> None:
    rng = random.Random(seed())
    p = f"s{uuid.uuid4().hex[:8]}"
    topics = TopicSettings(netflow=f"{p}.events.netflow", edr=f"{p}.events.edr", siem=f"{p}.events.siem")
    settings = Settings(kinds=KINDS, kafka=KafkaSettings(bootstrap_servers=cluster.bootstrap, group_id=p, client_id=p),
                        topics=topics, profiles=ProfileSettings(source="topic", topic_prefix=f"{p}.profiles."))
    inputs = [getattr(topics, k.value) for k in KINDS]
    profiles = [topic_for(settings.profiles.topic_prefix, k) for k in KINDS]
    # The worker would create its profile topics with one replica (its default): created here
    # as an operator of a cluster would, replicated, compacted.
    await asyncio.gather(*(cluster.acreate_topic(t, PARTITIONS) for t in inputs),
                         *(cluster.acreate_topic(t, PARTITIONS, config=COMPACTED) for t in profiles))
    sample = {k: _sample(k, 3000) for k in KINDS}
    group = f"{p}-profiles"
    progress = [0]
    t0 = time.monotonic()
    steps: list[str] = []

    async def step(what: str) -> None:
        done, _ = await _committed(settings, group)
        steps.append(f"{time.monotonic() - t0:6.1f}s  {progress[0]:6d} published  {done:6d} committed  {what}")

    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    publishing = asyncio.create_task(_publish(cluster, settings, sample, progress))
    try:
        await _committed_at_least(settings, group, rng.randint(300, 900))
        topic, partition = await _busiest_profile_partition(cluster, settings)
        node = await cluster.leader(topic, partition)
        cluster.kill_node(node)
        await step(f"kill -9 broker {node} (leader of {topic}[{partition}])")
        done, _ = await _committed(settings, group)
        await _committed_at_least(settings, group, done + rng.randint(300, 900))
        await step(f"worker made progress without broker {node}")
        # Its state again from the profile topics, one of them led by another broker now.
        worker.signal(signal.SIGKILL)
        worker.start()
        await step("kill -9 worker, started again")
        done, _ = await _committed(settings, group)
        await _committed_at_least(settings, group, done + rng.randint(300, 900))
        await step(f"restarted worker made progress without broker {node}")
        await asyncio.to_thread(cluster.start_node, node)
        await cluster.wait_isr(inputs + profiles)
        await step(f"broker {node} back, every ISR full")
        await publishing
        await _drained(settings, group)
        await step("worker committed every event")
    finally:
        publishing.cancel()
        worker.signal(signal.SIGTERM)
    print("\n" + "\n".join(steps))
    restored = re.findall(r"restored \S+: ([1-9]\d*) keys", (tmp_path / "worker.log").read_text())
    assert restored, "the restarted worker restored no state from the profile topics"
    for kind in KINDS:
        state, offline = await _topic_state(settings, kind), _offline_state(kind, sample[kind])
        differ = sum(state.get(k) != v for k, v in offline.items()) + len(state.keys() - offline.keys())
        print(f"{kind.value}: {len(sample[kind])} events, {len(offline)} profiles offline, "
              f"{len(state)} in the topic, {differ} differ")
        assert state == offline, f"{kind.value}: {differ} profiles differ from the offline recomputation"
    assert progress[0] == sum(len(v) for v in sample.values()), "the publisher did not send every event"


def _serving(run: Run, kind: str) -> set[str]:
    """The versions of ``kind`` the scorer says it serves (scorer_model_info on /metrics)."""
    _, text = run.proc.get("/metrics")
    found = (re.search(r'version="([^"]+)"', line) for line in text.splitlines()
             if line.startswith("scorer_model_info{") and f'kind="{kind}"' in line and not line.endswith(" 0.0"))
    return {m.group(1) for m in found if m is not None}


async def test_controller_through_the_loss_of_the_control_topic_leader(cluster: KafkaCluster, tmp_path: Path) -> None:
    """The lifecycle controller of a live exactly-once `scorer run` follows a promote issued
    while the control topic's leader is dead (-9): the engineer's `scorer models promote
    --wait` sees it applied, the scorer serves the promoted version, scores on with it, and the
    ledger holds (0 lost, 0 duplicates) once the broker is back."""
    if EventKind.SIEM not in usable_kinds():
        pytest.skip("the shipped siem model does not load right now")
    repo = tmp_path / "model_repository"
    shutil.copytree(MODEL_REPOSITORY, repo)
    clone_version(repo, "1", "2")  # siem_classifier 2: the same model published again
    lc = f"l{uuid.uuid4().hex[:8]}"
    lifecycle = {"SCORER_LIFECYCLE__ENABLED": "true", "SCORER_LIFECYCLE__CONTROL_TOPIC": f"{lc}.control",
                 "SCORER_LIFECYCLE__STATUS_TOPIC": f"{lc}.status", "SCORER_LIFECYCLE__SHADOW_TOPIC": f"{lc}.shadow",
                 "SCORER_INFERENCE__MODEL_REPOSITORY": str(repo),
                 "SCORER_INFERENCE__VERSIONS": '{"siem": "1"}'}  # the highest, 2, is the promote's
    # Created as an operator of a cluster would: replicated (the service would make them with one replica).
    await asyncio.gather(cluster.acreate_topic(f"{lc}.control", 1, config=COMPACTED),
                         cluster.acreate_topic(f"{lc}.status", 1, config=COMPACTED),
                         cluster.acreate_topic(f"{lc}.shadow", PARTITIONS))
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("SCORER_")} | lifecycle | {
        "SCORER_KAFKA__BOOTSTRAP_SERVERS": cluster.bootstrap, "SCORER_KINDS": '["siem"]'}
    async with live_run(cluster, tmp_path, transactional=True, env=lambda _: lifecycle) as run:
        assert _serving(run, "siem") == {"1"}
        node = await cluster.leader(f"{lc}.control", 0)
        cluster.kill_node(node)
        run.step(f"kill -9 broker {node} (leader of {lc}.control)")
        rc, out = await scorer_cli(cli_env, "models", "promote", "--kind", "siem", "--version", "2",
                                   "--production", "1", "--reason", "drill under leader loss", "--wait", str(STALL_S))
        assert rc == 0, out
        run.step("promote of siem_classifier 2 applied (the CLI waited for the scorer's status)")
        await run.advance()
        assert _serving(run, "siem") == {"2"}
        run.step(f"scorer made progress on version 2 without broker {node}")
        await asyncio.to_thread(cluster.start_node, node)
        await cluster.wait_isr([*run.all_topics(), f"{lc}.control", f"{lc}.status"])
        run.step(f"broker {node} back, every ISR full")
        await run.advance()
    check(run.report, True, faults=1)
