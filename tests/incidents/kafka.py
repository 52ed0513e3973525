"""Helpers of the incident job's Kafka tests (tests/streams/test_incidents*.py): per-test
topics and settings, findings produced as the scorer keys them, topics read back by kcat."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from scorer.config import IncidentSettings, KafkaSettings, Settings, TopicSettings
from scorer.kafka import settled_end_offsets, topic_partition_list
from scorer.shutdown import stop_process
from tests.support.kafka import KafkaBroker, free_ports, kcat_path
from tests.support.paths import ROOT


def incident_settings(prefix: str, **incidents: Any) -> IncidentSettings:
    """The incident job's topics under ``prefix``."""
    p = prefix
    return IncidentSettings(**{
        "topic": f"{p}.incidents", "keyed_topic": f"{p}.incidents.keyed", "state_topic": f"{p}.incidents.state",
        "links_topic": f"{p}.incidents.links", "suppressions_topic": f"{p}.incidents.suppressions",
        "suppressed_topic": f"{p}.incidents.suppressed", "dead_letter": f"{p}.incidents.dlq", **incidents})


def settings_for(kafka: KafkaBroker, **incidents: Any) -> Settings:
    """Settings whose every topic and group is this test's own."""
    p = f"i{uuid.uuid4().hex[:8]}"
    cfg = incident_settings(p, **incidents)
    settings = Settings(kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap, group_id=p, client_id=p,
                                            session_timeout_ms=6000),
                        topics=TopicSettings(alerts_prefix=f"{p}.alerts."), incidents=cfg)
    for kind in settings.kinds:
        kafka.create_topic(settings.topics.alert_topic(kind), partitions=3)
    return settings


def scored_settings(kafka: KafkaBroker, base: Settings, **incidents: Any) -> Settings:
    """``base`` (a scorer's settings, tests/support/pipeline.py) with the incident job's topics
    under its client id; its event and alert topics created with 3 partitions."""
    settings = base.model_copy(update={"incidents": incident_settings(base.kafka.client_id, **incidents)})
    for kind in settings.kinds:
        kafka.create_topic(getattr(settings.topics, kind.value), partitions=3)
        kafka.create_topic(settings.topics.alert_topic(kind), partitions=3)
    return settings


class Stall:
    """A wait's failure condition: what it watches has not moved for ``stall_s`` seconds. Not a
    total: on a slow machine the wait just takes longer, as long as something moves."""

    def __init__(self, what: str, stall_s: float = 60.0, detail: Callable[[], str] = str) -> None:
        self.what, self.stall_s, self.detail = what, stall_s, detail
        self.last: object = None
        self.since = time.monotonic()

    def check(self, progress: object) -> None:
        if progress != self.last:
            self.last, self.since = progress, time.monotonic()
        assert time.monotonic() - self.since < self.stall_s, \
            f"no progress for {self.stall_s:.0f} s: {self.what}\n{self.detail()}"


def env_of(settings: Settings) -> dict[str, str]:
    """The same settings as SCORER_* variables, for a ``python -m streams incidents`` process."""
    env = {"SCORER_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
           "SCORER_KAFKA__GROUP_ID": settings.kafka.group_id, "SCORER_KAFKA__CLIENT_ID": settings.kafka.client_id,
           "SCORER_KAFKA__SESSION_TIMEOUT_MS": str(settings.kafka.session_timeout_ms),
           "SCORER_TOPICS__ALERTS_PREFIX": settings.topics.alerts_prefix}
    for name, value in settings.incidents.model_dump(exclude_none=True).items():
        env[f"SCORER_INCIDENTS__{name.upper()}"] = str(value)
    return env


def entity(f: dict[str, Any]) -> bytes:
    """The key the scorer gives an alert: the event's host, else its source address."""
    data = f["evidences"][0]["data"]
    return str(data.get("host") or data.get("src_ip") or "").lower().encode()


async def produce_findings(bootstrap: str, settings: Settings, findings: Iterable[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = []
        for f in findings:
            topic = f"{settings.topics.alerts_prefix}{f['unmapped']['scorer']['kind']}"
            futures.append(await producer.send(topic, json.dumps(f).encode(), key=entity(f)))
        for fut in futures:
            await fut
    finally:
        await producer.stop()


async def produce_raw(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def decided(settings: Settings, *topics: str, stall_s: float = 60.0) -> None:
    """Until every transaction already written to ``topics`` is decided, so that kcat (a
    read_committed reader) sees it: EndTxn is answered before the coordinator writes the
    output partitions' markers, so a read right after a job stopped can miss its last batch
    (CI, stop 32: 227 of 265 findings in the incidents read). Only once the writers stopped:
    an open transaction of a writer on this event loop would never be decided."""
    partitions = await topic_partition_list(settings.kafka, topics)
    assert await settled_end_offsets(settings.kafka, partitions, stall_s=stall_s) is not None, \
        f"the last stable offsets of {topics} stalled for {stall_s:.0f} s"


def kcat(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every committed record of ``topic`` as kcat (an independent client, librdkafka) reads
    it: ``key``, ``payload`` (str), ``partition``, ``offset``, ``headers``."""
    binary = kcat_path()
    assert binary is not None, "kcat is not installed (deploy/local/system-deps.sh)"
    out = subprocess.run([binary, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-J", "-q",
                          "-X", "isolation.level=read_committed"], capture_output=True, check=True, timeout=60)
    return [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]


class JobProcess:
    """``python -m streams incidents`` as a real subprocess: SIGKILL is a real crash."""

    def __init__(self, settings: Settings, log: Path, *extra: str, instance: str = "0") -> None:
        self.port = free_ports(1)[0]
        self.env = dict(os.environ) | env_of(settings)
        self.args = [sys.executable, "-m", "streams", "incidents", "--instance", instance,
                     "--metrics-port", str(self.port), *extra]
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            out.write(f"\n===== start {self.starts} =====\n".encode())
            out.flush()
            self.proc = subprocess.Popen(self.args, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        self.starts += 1

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM (the batch in flight is committed first); the exit code (None: never started)."""
        if self.proc is None:
            return None
        return stop_process(self.proc, grace_s=30)

    def metric(self, name: str, labels: str = "") -> float:
        """Sum of the samples of ``name`` (whose label text contains ``labels``); 0 when down."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as resp:
                text = resp.read().decode()
        except OSError:
            return 0.0
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and labels in line)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.is_file() else ""


async def committed_to_end(bootstrap: str, group: str, topics: Iterable[str], stall_s: float = 120.0,
                           alive: Callable[[], bool] = lambda: True) -> None:
    """Until ``group`` has committed every partition of ``topics`` to its current end (fails
    once its commits have not moved for ``stall_s``: a killed job restarting takes a while)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not parts:
            await consumer._client.force_metadata_update()
            parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = await consumer.end_offsets(parts)
        stall = Stall(f"{group} committing its input to the end", stall_s)
        while True:
            committed = [await consumer.committed(tp) or 0 for tp in ends]
            if all(c >= end for c, end in zip(committed, ends.values(), strict=True)):
                return
            stall.check(committed)
            assert alive(), "the job exited"
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()
