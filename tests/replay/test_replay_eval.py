"""Replay real captures of every reader format into the real Kafka with the scorer running
(Triton for some, ONNX Runtime for others), collect what it published, evaluate, and check
that the report accounts for every event; paced replays hold their schedule; record a topic
(tombstones included) and replay it; the embedded path via the CLI.

Formats the data folder has no file of are derived from it in a temp folder (Zeek JSON from
a Zeek TSV log, OTRF JSON lines out of their zip); EVTX is the sample of tests/replay.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from replay.cli import items
from replay.eval.evaluate import evaluate
from replay.eval.join import join
from replay.eval.truth import read_truth
from replay.outgoing import Outgoing
from replay.player import Clock, Pacing, Summary, planned
from replay.sinks import replay_to_kafka
from scorer.captures import LabeledEvent, iter_capture
from scorer.captures.recorded import Envelope, is_record_file, read_envelopes
from scorer.config import Settings
from scorer.demo import bundled_capture
from tests.support import ocsf_schema
from tests.support.captures import EVTX_RECORDS, evtx_sample, otrf_json_lines, zeek_json_from_tsv
from tests.support.kafka import KafkaBroker
from tests.support.paths import DATA_DIR, MODEL_REPOSITORY, ROOT
from tests.support.pipeline import consume, running_scorer, scorer_settings
from tests.support.triton import TritonServer

NETFLOW, EDR, SIEM = DATA_DIR / "netflow", DATA_DIR / "edr", DATA_DIR / "siem"
ZEEK = NETFLOW / "stratosphere-zeek/008-conn.log.labeled"
CIC = NETFLOW / "cic-ids2017-improved/Botnet_736.csv"
OTRF = EDR / "otrf-security-datasets/windows/collection/host/msf_record_mic.zip"
# The broker's append time on every topic of a run: latency is then event appended -> alert
# appended (acked), on one clock, not the producers' send times.
LOG_APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}

Capture = Callable[[Path], Path]  # a temp folder -> the capture to replay


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set SCORER_DATA_DIR)")
    return path


def real(path: Path) -> Capture:
    return lambda _: need(path)


# format -> (capture, events replayed): small slices of the real data
ON_TRITON: dict[str, tuple[Capture, int]] = {
    "zeek-tsv": (real(ZEEK), 300),
    "zeek-json": (lambda tmp: zeek_json_from_tsv(need(ZEEK), tmp / "008-conn.json", 200), 200),
    "cicflowmeter-csv": (real(CIC), 200),
    "ait-csv": (real(SIEM / "ait-ads/shaw_alerts.csv.gz"), 300),
}
ON_ONNXRUNTIME: dict[str, tuple[Capture, int]] = {
    "otrf-json-zip": (real(OTRF), 300),
    "otrf-json-lines": (lambda tmp: otrf_json_lines(need(OTRF), tmp), 200),
    "event-xml-json": (real(EDR / "sigma-regression/rules/windows/process_creation"), 60),
    "evtx": (evtx_sample, EVTX_RECORDS),
    "canonical": (lambda _: bundled_capture(), 300),
}


def expected(path: Path, n: int) -> list[LabeledEvent]:
    labeled = (it for it in iter_capture(need(path)) if isinstance(it, LabeledEvent))
    return list(itertools.islice(labeled, n))


async def replay_and_evaluate(
    settings: Settings, path: Path, n: int, out: Path, pacing: Pacing
) -> tuple[Summary, dict[str, Any]]:
    summary = await replay_to_kafka(
        settings, items([path], settings), pacing, out, limit=n, wait_s=120
    )
    report = evaluate(
        out / "truth.jsonl", out / "scores.jsonl", out / "alerts.jsonl", out / "report"
    )
    return summary, report


def alert_values(path: Path) -> list[bytes]:
    """The findings of an alerts file: a recorded dump of the alert topics, or plain lines."""
    if is_record_file(path):
        return [e.value for e in read_envelopes(path) if isinstance(e, Envelope) and e.value is not None]
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def check_reconciles(
    name: str, path: Path, n: int, summary: Summary, report: dict[str, Any], out: Path
) -> None:
    events = expected(path, n)
    assert summary.events == len(events) and summary.scorer_caught_up, name
    truth = list(read_truth(out / "truth.jsonl"))
    assert [t.uid for t in truth] == [e.event.uid for e in events], f"{name}: every event, in order"
    assert [t.label for t in truth] == [e.label for e in events]
    rec = report["reconciliation"]
    assert rec["events"] == rec["scored"] == len(events) and rec["not_scored"] == 0, name
    assert rec["known_truth"] + rec["unknown_truth"] == len(events)
    assert rec["known_truth"] == sum(e.malicious is not None for e in events)
    assert rec["unmatched"] == {"scores": 0, "alerts": 0} and rec["accounted"], name
    assert rec["alerts_read"] == rec["alerted"] and rec["alert_score_disagreements"] == 0, name
    assert sum(c["events"] for c in report["captures"]) == len(events)
    assert sum(c["events"] for c in report["classes"]) == len(events)
    if rec["alerted"]:
        lat = report["latency_ms"]
        assert lat["available"] and lat["alert"]["n"] == rec["alerted"], name
        assert lat["axis"] == "ms, event appended -> alert appended", name
        print(f"{name}: {rec['alerted']} alerts, latency ms {lat['alert']}")
        ocsf_schema.assert_valid(alert_values(out / "alerts.jsonl"))
    assert (out / "report" / "report.html").stat().st_size > 10_000


async def run_formats(
    kafka: KafkaBroker,
    formats: dict[str, tuple[Capture, int]],
    backend: str,
    triton_url: str,
    tmp: Path,
) -> None:
    settings = scorer_settings(kafka.bootstrap, backend=backend, triton_url=triton_url)
    topics = [getattr(settings.topics, k.value) for k in settings.kinds]
    topics += [settings.topics.alert_topic(k) for k in settings.kinds]
    for topic in [*topics, settings.topics.scores]:
        await kafka.acreate_topic(str(topic), 3, config=LOG_APPEND_TIME)
    async with running_scorer(settings) as (_, metrics):
        for name, (make, n) in formats.items():
            path = make(tmp / "captures" / name)
            expected(path, n)  # skip early without data
            summary, report = await replay_and_evaluate(
                settings, path, n, tmp / name, Pacing(fast=True)
            )
            check_reconciles(name, path, n, summary, report, tmp / name)
        assert metrics.accounting.balanced(), metrics.accounting.totals()


@pytest.mark.data
async def test_every_format_on_triton_reconciles(
    kafka: KafkaBroker, triton: TritonServer, tmp_path: Path
) -> None:
    await run_formats(kafka, ON_TRITON, "triton", triton.grpc_url, tmp_path)
    for name in ON_TRITON:
        run = join(tmp_path / name / "truth.jsonl", tmp_path / name / "scores.jsonl", None)
        assert {s.backend for s in run.scores.values()} == {"triton"}, "not a fallback"


@pytest.mark.data
async def test_every_format_on_onnxruntime_reconciles(kafka: KafkaBroker, tmp_path: Path) -> None:
    await run_formats(kafka, ON_ONNXRUNTIME, "onnxruntime", "127.0.0.1:1", tmp_path)


@pytest.mark.data
@pytest.mark.parametrize(
    ("pacing", "limit"),
    # 400 events at 1000/s: 0.4 s; 150 Zeek flows as recorded x1000: a 1.8 s schedule
    [(Pacing(rate=1000), 400), (Pacing(speed=1000), 150)],
    ids=["rate-1000", "as-recorded-x1000"],
)
async def test_paced_replay_into_kafka_holds_its_schedule(
    kafka: KafkaBroker, tmp_path: Path, pacing: Pacing, limit: int
) -> None:
    """Judged on when each event was handed to the Kafka sink (the player's own clock), not
    on the run's wall time (which includes waiting for the broker's acks at the end): never
    before it was due, and the last one on schedule, give or take 15% plus however long this
    process's event loop was itself held up meanwhile (measured, not assumed: a loaded
    machine stalls every coroutine, a sink that blocks the replay stalls only the replay)."""
    settings = scorer_settings(kafka.bootstrap)
    path = need(ZEEK)
    n, schedule = planned(items([path], settings), pacing, limit)
    clock = Clock(pacing)
    outgoing = (it for it in items([path], settings) if isinstance(it, Outgoing))
    due = [clock.due(it.capture, it.ts) or 0.0 for it in itertools.islice(outgoing, n)]
    sent: list[float] = []
    stop = asyncio.Event()
    stalls = asyncio.create_task(loop_stalls(stop))
    try:
        summary = await replay_to_kafka(settings, items([path], settings), pacing, tmp_path, limit=n,
                                        progress=lambda _, elapsed: sent.append(elapsed))
    finally:
        stop.set()
    stalled = await stalls
    late = max(t - d for t, d in zip(sent, due, strict=True))
    print(f"{pacing.describe()}: {n} events in {summary.seconds} s (last sent at {sent[-1]:.3f} s), "
          f"schedule {schedule:.3f} s, latest {late * 1000:.1f} ms, event loop stalled up to {stalled * 1000:.1f} ms")
    assert summary.events == len(sent) == n == limit
    assert all(t >= d - 0.0005 for t, d in zip(sent, due, strict=True)), "an event went before it was due"
    assert sent[-1] <= schedule * 1.15 + stalled


async def loop_stalls(stop: asyncio.Event, tick: float = 0.001) -> float:
    """The longest this event loop woke a sleeper late, until ``stop``: how far the
    machine (not the code under test) held every coroutine up."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    while not stop.is_set():
        t0 = loop.time()
        await asyncio.sleep(tick)
        worst = max(worst, loop.time() - t0 - tick)
    return worst


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "scorer.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


async def test_record_then_replay_keeps_keys_values_and_partition_order(
    kafka: KafkaBroker, tmp_path: Path
) -> None:
    src, dst = f"rec{uuid.uuid4().hex[:8]}", f"rep{uuid.uuid4().hex[:8]}"
    await kafka.acreate_topic(src, 3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(120):
            # keyless, binary, header-carrying records and tombstones (a compacted topic's
            # deletes) too: the dump must be lossless
            key = None if i % 10 == 0 else f"host-{i % 7}".encode()
            value = None if i % 10 == 3 else bytes([i, 0, 255]) + json.dumps({"i": i}).encode()
            await producer.send_and_wait(
                src,
                value,
                key=key,
                partition=i % 3,
                headers=[("n", str(i).encode()), ("bin", b"\xff\x00")],
            )
    finally:
        await producer.stop()
    dump = tmp_path / "dump.jsonl"
    cli("record", src, "--bootstrap", kafka.bootstrap, "--out", str(dump))
    replayed = cli(
        "replay",
        str(dump),
        "--to",
        "kafka",
        "--topic",
        dst,
        "--fast",
        "--bootstrap",
        kafka.bootstrap,
        "--out",
        str(tmp_path / "out"),
    )
    assert "replayed      120 events" in replayed.stdout

    def by_partition(records: list[Any]) -> dict[int, list[tuple[Any, ...]]]:
        out: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for r in records:
            out[r.partition].append((r.key, r.value, tuple(r.headers)))
        return dict(out)

    before = by_partition(await consume(kafka.bootstrap, src, 120))
    after = by_partition(await consume(kafka.bootstrap, dst, 120))
    assert sorted(before) == [0, 1, 2] and after == before
    assert sum(v is None for records in after.values() for _, v, _ in records) == 12


@pytest.mark.data
def test_embedded_replay_and_eval_from_the_cli(tmp_path: Path) -> None:
    path, n = CIC, 200
    events = expected(path, n)
    out = tmp_path / "run"
    bad = tmp_path / "notes.bin"
    bad.write_bytes(b"\x00 not a capture")
    run = cli(
        "replay",
        str(bad),
        str(path),
        "--to",
        "embedded",
        "--limit",
        str(n),
        "--speed",
        "x1000000",
        "--out",
        str(out),
        "--model-repository",
        str(MODEL_REPOSITORY),
    )
    assert f"{bad}:0: unknown_format" in run.stderr and "read errors   1" in run.stdout
    cli(
        "eval",
        "--truth",
        str(out / "truth.jsonl"),
        "--scores",
        str(out / "scores.jsonl"),
        "--alerts",
        str(out / "alerts.jsonl"),
        "--out",
        str(tmp_path / "report"),
    )
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    rec = report["reconciliation"]
    assert rec["events"] == rec["scored"] == rec["replayed"] == len(events) and rec["accounted"]
    assert report["latency_ms"]["available"] is False, "embedded: no produce -> ack path, said so"
    assert report["throughput"]["scorer_events_per_second"] > 0
    if rec["alerted"]:
        ocsf_schema.assert_valid(alert_values(out / "alerts.jsonl"))
