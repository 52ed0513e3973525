"""Helpers of the incident job's Kafka tests (tests/streams/test_incidents*.py): per-test
topics and settings, findings produced as the scorer keys them, topics read back by kcat."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer

from scorer.config import IncidentSettings, KafkaSettings, Settings, TopicSettings
from tests.support.kafka import KafkaBroker, kcat_path


def settings_for(kafka: KafkaBroker, **incidents: Any) -> Settings:
    """Settings whose every topic and group is this test's own."""
    p = f"i{uuid.uuid4().hex[:8]}"
    cfg = IncidentSettings(**{
        "topic": f"{p}.incidents", "keyed_topic": f"{p}.incidents.keyed", "state_topic": f"{p}.incidents.state",
        "links_topic": f"{p}.incidents.links", "suppressions_topic": f"{p}.incidents.suppressions",
        "suppressed_topic": f"{p}.incidents.suppressed", "dead_letter": f"{p}.incidents.dlq", **incidents})
    settings = Settings(kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap, group_id=p, client_id=p,
                                            session_timeout_ms=6000),
                        topics=TopicSettings(alerts_prefix=f"{p}.alerts."), incidents=cfg)
    for kind in settings.kinds:
        kafka.create_topic(settings.topics.alert_topic(kind), partitions=3)
    return settings


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


def kcat(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every committed record of ``topic`` as kcat (an independent client, librdkafka) reads
    it: ``key``, ``payload`` (str), ``partition``, ``offset``, ``headers``."""
    binary = kcat_path()
    assert binary is not None, "kcat is not installed (deploy/local/system-deps.sh)"
    out = subprocess.run([binary, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-J", "-q",
                          "-X", "isolation.level=read_committed"], capture_output=True, check=True, timeout=60)
    return [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]
