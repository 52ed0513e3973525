"""`scorer run --processes N`: one supervisor, N consumer-group members.

The live test kills one worker with SIGKILL mid-stream (scheduled on both workers' observed
progress) on a real broker with in-process ONNX Runtime, and reads every output back: the
ledger has every event's outcome; duplicates stay within what one crash may repeat at
least once; the supervisor restarted the worker; SIGTERM then stops everything with exit
code 0 after every input offset was committed (the workers drained and committed).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from scorer.errors import ConfigError
from scorer.metrics import ScorerMetrics
from scorer.metrics.aggregate import merge_expositions
from scorer.service.supervisor import free_port_block, worker_listeners
from tests.support.faults import LiveFeed, ScorerProcess, new_topics, scorer_env, stopped_on_exit
from tests.support.kafka import KafkaBroker
from tests.support.paths import ROOT

BATCH = 64
INFLIGHT = 4
PARTITIONS = 4
PER_CRASH_BOUND = BATCH * (INFLIGHT + 1)  # what one kill may make the group score twice (test_crash)


def _samples(text: str, name: str) -> dict[str, float]:
    """``worker`` label -> value of the samples named ``name``."""
    return {s.labels.get("worker", ""): s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == name}


def test_one_endpoint_labels_each_workers_samples() -> None:
    texts = []
    for worker, n in (("0", 3), ("1", 5)):
        m = ScorerMetrics()
        m.count_consumed("netflow", n)
        m.added_latency.observe(0.002, n)
        m.stage_seconds.observe("decode", 0.001)
        texts.append((worker, generate_latest(m.registry).decode()))
    registry = CollectorRegistry()

    class Merged(Collector):
        def collect(self) -> Iterable[Metric]:
            return merge_expositions(texts)

    registry.register(Merged())
    out = generate_latest(registry).decode()
    assert _samples(out, "scorer_events_consumed_total") == {"0": 3.0, "1": 5.0}
    assert _samples(out, "scorer_added_latency_seconds_count") == {"0": 3.0, "1": 5.0}
    stage = [s for f in text_string_to_metric_families(out) for s in f.samples
             if s.name == "scorer_stage_seconds_count"]
    assert {(s.labels["worker"], s.labels["stage"]) for s in stage} == {("0", "decode"), ("1", "decode")}
    assert out.count("# TYPE scorer_events_consumed_total counter") == 1, "one family per name"


def _ports(listeners: list[socket.socket]) -> list[int]:
    return [int(s.getsockname()[1]) for s in listeners]


def test_worker_listeners_sit_beside_a_fixed_port_or_are_free_and_are_held() -> None:
    free = worker_listeners(0, 3)
    try:
        assert len(set(_ports(free))) == 3 and all(s.get_inheritable() for s in free)
        for s in free:  # listening already: a worker inherits a socket it only has to accept on
            with socket.create_connection(s.getsockname(), timeout=5):
                pass
        # A fixed supervisor port: its workers' are the next ones, and one held elsewhere is refused
        # by name at the supervisor's start (it was a worker dying before it was ever ready).
        held = _ports(free)[1]
        with pytest.raises(ConfigError, match=f"worker 0's metrics port 127.0.0.1:{held}"):
            worker_listeners(held - 1, 2)
        port = _ports(free)[0]
        free[0].close()
        beside = worker_listeners(port - 1, 1)
        assert _ports(beside) == [port]
        beside[0].close()
    finally:
        for s in free:
            s.close()


def test_a_port_block_is_free_and_out_of_the_ephemeral_range() -> None:
    # Ports from bind(0) are ephemeral ones, which outgoing connections take at any moment: a
    # supervisor's fixed port chosen there can find its workers' ports beside it taken.
    with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
        ephemeral = int(fh.read().split()[0])
    for _ in range(20):
        port = free_port_block(3)
        assert port >= 10_000 and port + 2 < ephemeral
        held = worker_listeners(port, 2)  # the workers' ports beside the supervisor's
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))  # and the supervisor's own
            assert _ports(held) == [port + 1, port + 2]
        finally:
            for s in held:
                s.close()


async def _until(check: Callable[[], tuple[bool, float]], what: str, proc: ScorerProcess,
                 quiet_s: float = 120.0) -> None:
    """Wait until ``check()`` (a value that must grow) holds; fail after ``quiet_s`` with no growth."""
    last, since = None, time.monotonic()
    while True:
        ok, value = check()
        if ok:
            return
        if value != last:
            last, since = value, time.monotonic()
        assert time.monotonic() - since < quiet_s, f"no progress towards {what}: {value}\n{proc.log_tail()}"
        await asyncio.sleep(0.2)


async def _uncommitted(kafka: KafkaBroker, group: str, parts: list[TopicPartition]) -> dict[str, tuple[int, int]]:
    """Input partitions whose committed offset is not their end offset: (committed, end)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        ends = await consumer.end_offsets(parts)
    finally:
        await consumer.stop()
        await admin.close()
    return {f"{tp.topic}/{tp.partition}": (committed[tp].offset if tp in committed else -1, end)
            for tp, end in ends.items() if end and (tp not in committed or committed[tp].offset != end)}


@pytest.mark.data
async def test_kill9_of_a_worker_loses_nothing_and_sigterm_commits(kafka: KafkaBroker, tmp_path: Path) -> None:
    topics = await new_topics(kafka, partitions=PARTITIONS)
    # The supervisor's port and its 2 workers' beside it, all free and out of the ephemeral range.
    env = scorer_env(kafka.bootstrap, topics, SCORER_BATCH__MAX_RECORDS=str(BATCH),
                     SCORER_BATCH__MAX_INFLIGHT=str(INFLIGHT), SCORER_HTTP__PORT=str(free_port_block(3)))
    sup = ScorerProcess(env, tmp_path / "supervisor.log", args=("--processes", "2"))
    with stopped_on_exit(sup):
        sup.start()
        await sup.wait_ready(timeout=180)
        live = LiveFeed.start(kafka, topics, "w", rate=400)

        def scored() -> dict[str, float]:
            return _samples(sup.get("/metrics")[1], "scorer_events_scored_total")

        def both_scored() -> tuple[bool, float]:
            per: dict[str, float] = {}
            for worker, v in scored().items():
                per[worker] = per.get(worker, 0.0) + v
            return len(per) == 2 and all(v > 0 for v in per.values()), sum(per.values())

        await _until(both_scored, "both workers scoring", sup)
        assert sup.pid is not None
        victim = psutil.Process(sup.pid).children()[0]
        victim.kill()  # SIGKILL: no commit, no LeaveGroup
        victim.wait(10)

        def restarted() -> tuple[bool, float]:
            restarts = sum(_samples(sup.get("/metrics")[1], "scorer_worker_restarts_total").values())
            return restarts >= 1 and sup.get("/readyz")[0] == 200, restarts

        await _until(restarted, "the killed worker restarted and ready", sup)
        mark = both_scored()[1]
        await _until(lambda: (both_scored()[1] > mark + 200, both_scored()[1]), "scoring after the restart", sup)
        live.stop()
        _, ledger, outputs = await live.outcomes()
        assert sup.pid is not None
        workers = psutil.Process(sup.pid).children()
        rc = sup.stop(timeout=90)
        assert rc == 0, sup.log_tail()
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers), "workers outlived it"
    report = ledger.report(outputs)
    print(f"\n2 workers, 1 x kill -9: {report}")
    assert not report.problems(), report.problems()
    assert report.duplicate_count <= PER_CRASH_BOUND, report.duplicates
    parts = [TopicPartition(topics.input(k), p) for k in topics.kinds for p in range(PARTITIONS)]
    assert await _uncommitted(kafka, f"{topics.prefix}-group", parts) == {}, "SIGTERM: workers commit what they scored"


def test_workers_that_cannot_start_stop_the_supervisor_with_their_exit_code(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORER_")}
    env.update(SCORER_INFERENCE__BACKEND="onnxruntime", SCORER_HTTP__PORT="0",
               SCORER_INFERENCE__MODEL_REPOSITORY=str(tmp_path / "no-such-repository"))
    proc = subprocess.run([sys.executable, "-m", "scorer.cli", "run", "--processes", "2"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "before it was ever ready: stopping" in proc.stderr, proc.stderr[-3000:]
    assert "restarting" not in proc.stderr, "a worker that never started is not restarted forever"


def test_processes_must_be_positive() -> None:
    proc = subprocess.run([sys.executable, "-m", "scorer.cli", "run", "--processes", "0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--processes must be 1 or more" in proc.stderr
