"""Scale-out on Kafka's own mechanism: two `scorer run` processes in one consumer group.

One is killed (SIGKILL) mid-stream; the survivor takes over its partitions. Every input
event must have a score afterwards (at-least-once: duplicates allowed, none missing).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.kafka import KafkaBroker
from tests.support.paths import MODEL_REPOSITORY, ROOT
from tests.support.pipeline import consume, produce
from tests.support.samples import SAMPLES

pytestmark = pytest.mark.integration


def _spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "scorer.cli", "run"], env=env, cwd=ROOT,
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )


async def test_two_processes_one_killed_mid_stream_lose_nothing(kafka: KafkaBroker, tmp_path: Path) -> None:
    p = f"g{uuid.uuid4().hex[:8]}"
    topics = {"netflow": f"{p}.events.netflow", "edr": f"{p}.events.edr", "siem": f"{p}.events.siem"}
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(t, 6, 1) for t in topics.values()])
    await admin.close()

    env = {
        **os.environ,
        "SCORER_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap,
        "SCORER_KAFKA__GROUP_ID": f"{p}-group",
        "SCORER_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "SCORER_TOPICS__NETFLOW": topics["netflow"],
        "SCORER_TOPICS__EDR": topics["edr"],
        "SCORER_TOPICS__SIEM": topics["siem"],
        "SCORER_TOPICS__ALERTS_PREFIX": f"{p}.alerts.",
        "SCORER_TOPICS__DEAD_LETTER": f"{p}.dlq",
        "SCORER_TOPICS__SCORES": f"{p}.scores",
        "SCORER_BATCH__MAX_RECORDS": "64",
        "SCORER_INFERENCE__BACKEND": "onnxruntime",
        "SCORER_INFERENCE__MODEL_REPOSITORY": str(MODEL_REPOSITORY),
        "SCORER_HTTP__PORT": "0",
    }
    a = _spawn({**env, "SCORER_KAFKA__CLIENT_ID": "a"}, tmp_path / "a.log")
    b = _spawn({**env, "SCORER_KAFKA__CLIENT_ID": "b"}, tmp_path / "b.log")
    expected: set[str] = set()
    try:
        await asyncio.sleep(4)  # both join the group
        for rnd in range(6):
            for kind, sample_of in SAMPLES.items():
                sample = sample_of()
                records = []
                for uid, key, value in sample:
                    doc = json.loads(value)
                    doc["uid"] = f"{uid}#{rnd}"
                    expected.add(doc["uid"])
                    records.append((key, json.dumps(doc).encode()))
                await produce(kafka.bootstrap, topics[kind.value], records)
            if rnd == 2:
                a.send_signal(signal.SIGKILL)  # mid-stream, batches possibly in flight
            await asyncio.sleep(0.5)
        scores = await consume(
            kafka.bootstrap, f"{p}.scores", len(expected), timeout=120,
            done=lambda got: expected <= {json.loads(m.value)["uid"] for m in got},
        )
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (a, b):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    seen = [json.loads(m.value)["uid"] for m in scores]
    missing = expected - set(seen)
    assert not missing, f"{len(missing)} events never scored, e.g. {sorted(missing)[:5]}"
    assert b.returncode == 0, (tmp_path / "b.log").read_text()[-2000:]
    assert a.returncode == -signal.SIGKILL
