"""Evidence for docs/profiles.md: why the profile job does not run on faust-streaming.

Both tests run a real faust worker (tests/streams/faust_probe.py) against the real broker
and kill it with SIGKILL. They pass while faust *misbehaves*; if a faust release fixes
this, they fail, and the choice in streams/worker.py should be revisited.

The issue #606 test runs by default: its message is held in flight for an hour, so faust's
commit past it does not depend on timing, and it takes about 15 s. The double-count test is
opt-in (SCORER_FAUST_EVIDENCE=1): whether the kill lands between a changelog write and the
next commit is a race that reproduces in most runs, not all, and it takes 80+ s on a busy
2-core machine; CI must not gate on either.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.support.kafka import KafkaBroker

# Evidence about a third-party library that depends on where a SIGKILL lands: the suite
# does not gate on it (results and the runs that produced them are in docs/profiles.md).
racy = pytest.mark.skipif(not os.environ.get("SCORER_FAUST_EVIDENCE"),
                          reason="the faust double-count race runs only with SCORER_FAUST_EVIDENCE=1")
PROBE = Path(__file__).with_name("faust_probe.py")


class Probe:
    def __init__(self, kafka: KafkaBroker, tmp: Path, mode: str, **env: str) -> None:
        self.tmp, self.mode = tmp, mode
        self.out = tmp / "processed.txt"
        self.env = dict(os.environ, PROBE_BROKER=kafka.bootstrap, PROBE_OUT=str(self.out),
                        PROBE_DATADIR=str(tmp / "faust-data"), **env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, **env: str) -> None:
        with (self.tmp / f"{self.mode}.log").open("ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen([sys.executable, str(PROBE), self.mode], env={**self.env, **env},
                                         stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def processed(self) -> list[bytes]:
        return self.out.read_bytes().splitlines() if self.out.exists() else []

    def wait(self, n: int, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.processed()) < n:
            alive = self.proc is not None and self.proc.poll() is None
            assert alive and time.monotonic() < deadline, (self.tmp / f"{self.mode}.log").read_text()[-3000:]
            time.sleep(0.2)


@pytest.fixture
def probe_env(kafka: KafkaBroker) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:8]
    env = {"PROBE_TOPIC": f"faust-in-{tag}", "PROBE_APP": f"faust-probe-{tag}"}
    kafka.create_topic(env["PROBE_TOPIC"], partitions=1)
    yield env


async def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, v, key=k) for k, v in records])
    finally:
        await producer.stop()


async def _committed(bootstrap: str, group: str, tp: TopicPartition) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return int(await consumer.committed(tp) or 0)
    finally:
        await consumer.stop()


async def test_faust_commits_past_an_in_flight_message_issue_606(
    kafka: KafkaBroker, probe_env: dict[str, str], tmp_path: Path
) -> None:
    topic = probe_env["PROBE_TOPIC"]
    await _produce(kafka.bootstrap, topic, [(b"k", str(i).encode()) for i in range(10)])
    probe = Probe(kafka, tmp_path, "gap", **probe_env)
    probe.start(PROBE_SLOW="0")  # offset 0 takes an hour; offsets 1-9 take 50 ms each
    try:
        probe.wait(9)
        await asyncio.sleep(3)  # several commit intervals
        committed = await _committed(kafka.bootstrap, probe_env["PROBE_APP"], TopicPartition(topic, 0))
    finally:
        probe.kill()
    assert b"0" not in probe.processed()
    assert committed > 0, "faust no longer commits past the in-flight message: revisit streams/worker.py"
    probe.start(PROBE_SLOW="")  # restarted: it resumes after the committed offset
    await asyncio.sleep(8)
    probe.kill()
    assert b"0" not in probe.processed()  # offset 0 was never processed: lost


@racy
async def test_faust_table_double_counts_after_a_crash(
    kafka: KafkaBroker, probe_env: dict[str, str], tmp_path: Path
) -> None:
    topic, n = probe_env["PROBE_TOPIC"], 3000
    await _produce(kafka.bootstrap, topic, [(f"k{i % 10}".encode(), str(i).encode()) for i in range(n)])
    probe = Probe(kafka, tmp_path, "count", **probe_env)
    probe.start()
    probe.wait(n // 3)
    probe.kill()  # mid-stream
    probe.start()
    probe.wait(n)
    await asyncio.sleep(3)
    probe.kill()
    changelog = f"{probe_env['PROBE_APP']}-counts-changelog"
    latest = await _latest(kafka.bootstrap, changelog)
    total = sum(json.loads(v) for v in latest.values())
    replayed = len(probe.processed()) - len(set(probe.processed()))
    assert replayed > 0  # at-least-once: the tail after the last commit ran twice
    assert total > n, f"table total {total} for {n} events: faust recovered without double counting"


async def _latest(bootstrap: str, topic: str) -> dict[bytes, bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: dict[bytes, bytes] = {}
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=2000)
            if not batch:
                return out
            for records in batch.values():
                out.update({r.key: r.value for r in records if r.key is not None})
    finally:
        await consumer.stop()
