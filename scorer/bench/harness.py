"""Runs one runner process against the real broker and measures it.

Two phases per runner, each on fresh topics:

- drain: N events are preloaded, then the runner starts; throughput is measured on the
  output topic from the first output to the N-th (start-up excluded), with the runner
  process's CPU time and peak RSS over the same window. The outputs are counted from the
  topic's end offsets (:class:`scorer.bench.counting.OutputCount`), not read: on a 2-core box
  a reader of every output took ~0.5 core from the runner it measured (docs/benchmarks.md
  section 39); or, for runners that write no record per event (``--outputs alerts``: the
  service's default, alerts only), the offsets their group commits (``CommittedCount``);
- fixed rate: the runner is warm and idle, the load generator offers R events/s for D
  seconds; end-to-end latency (event produced -> output consumed here) per event.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from scorer.bench import runner_metrics
from scorer.bench.counting import CommittedCount, Count, OutputCount, watch_drain
from scorer.bench.loadgen import LoadGenerator, Payload
from scorer.config import KafkaSettings
from scorer.events.structs import EventKind
from scorer.kafka import TopicSpec, ensure_topics

Command = Callable[[str, dict[EventKind, str], str, str], tuple[list[str], dict[str, str]]]


WARM_UP_S = 3.0


class RunResult(msgspec.Struct):
    runner: str
    events: int
    throughput_eps: float
    cpu_us_per_event: float
    peak_rss_mb: float
    rate_offered_eps: float = 0.0
    rate_achieved_eps: float = 0.0
    e2e_ms: dict[str, float] = {}
    added_ms: dict[str, float] = {}
    # Mean per micro-batch (fixed rate: over the measured phase; drain: the whole run):
    # records, and ms in each stage.
    batch_mean: dict[str, float] = {}
    note: str = ""
    # Fixed rate: quantiles of the runner's latency histograms (scorer.bench.latency).
    histograms: dict[str, dict[str, float]] = {}
    # Fixed rate: the measured phase, time.perf_counter() at its start and end (the clock is
    # the machine's monotonic one, so a runner's own timestamps compare with it).
    measured: tuple[float, float] = (0.0, 0.0)
    # Drain, scraped once after it: records each worker consumed (a supervisor's ``worker``
    # label; "" for a lone process), which says how the group split the drain.
    consumed_by_worker: dict[str, float] = {}


class _Uid(msgspec.Struct):
    uid: str


async def make_topics(
    bootstrap: str, kinds: tuple[EventKind, ...], partitions: int
) -> tuple[dict[EventKind, str], str]:
    p = f"bench-{uuid.uuid4().hex[:8]}"
    topics = {k: f"{p}.events.{k.value}" for k in kinds}
    out = f"{p}.out"
    await ensure_topics(KafkaSettings(bootstrap_servers=bootstrap),
                        [TopicSpec(t, partitions) for t in [*topics.values(), out]])
    return topics, out


def run_prefix(out: str) -> str:
    """The prefix of every topic of the run whose output topic is ``out`` (make_topics')."""
    return out.rsplit(".", 1)[0] + "."


async def drop_topics(bootstrap: str, out: str) -> None:
    """The run's topics (make_topics' prefix of ``out``: inputs, output, the runner's own)
    deleted: a dev broker kept every run's, 33 GB of them (docs/benchmarks.md section 38).
    A failure is said, not raised: the numbers are measured."""
    prefix = run_prefix(out)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        ours = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if ours:
            await admin.delete_topics(ours)
    except KafkaError as exc:
        print(f"bench: could not delete the run's topics {prefix}*: {exc!r}", file=sys.stderr)
    finally:
        await admin.close()


class OutputWatcher:
    """Consumes the output topic; counts records and, when asked, per-event latency."""

    def __init__(self, bootstrap: str, topic: str, sent_at: npt.NDArray[np.float64] | None = None) -> None:
        self.bootstrap, self.topic, self.sent_at = bootstrap, topic, sent_at
        self.count = 0
        self.first_at: float | None = None
        self.latencies: list[float] = []
        self._dec = msgspec.json.Decoder(_Uid)
        self._stop = asyncio.Event()

    async def run(self) -> None:
        # No group: subscribe() then takes every partition, without a coordinator round trip.
        consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=None, fetch_max_wait_ms=5)
        await consumer.start()
        try:
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=5, max_records=10_000)
                now = time.time()
                for msgs in batch.values():
                    if self.first_at is None and msgs:
                        self.first_at = time.perf_counter()
                    self.count += len(msgs)
                    if self.sent_at is not None:
                        for m in msgs:
                            uid = self._dec.decode(m.value).uid
                            if uid.startswith("b"):
                                self.latencies.append(now - float(self.sent_at[int(uid[1:])]))
        finally:
            await consumer.stop()

    def stop(self) -> None:
        self._stop.set()


def _percentiles(values_s: list[float] | npt.NDArray[np.float64]) -> dict[str, float]:
    arr = np.asarray(values_s) * 1000
    if arr.size == 0:
        return {}
    return {k: round(float(np.percentile(arr, q)), 3) for k, q in (("p50", 50), ("p99", 99), ("p99.9", 99.9))}


class RunnerProcess:
    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.profiling = bool(profile_dir := os.environ.get("SCORER_BENCH_PROFILE"))
        if profile_dir:
            # A profiling run: py-spy samples the runner; its timings are not the benchmark's.
            out = Path(profile_dir) / f"{log.stem}.txt"
            # SCORER_BENCH_PROFILE_ARGS: more py-spy options, e.g. "--idle --native" (native
            # frames, and threads waiting on ONNX Runtime's pool, which py-spy drops by default).
            extra = shlex.split(os.environ.get("SCORER_BENCH_PROFILE_ARGS", ""))
            argv = ["py-spy", "record", "-r", "200", "-f", "raw", *extra, "-o", str(out), "--", *argv]
        self.proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=log.open("wb"),
                                     stderr=subprocess.STDOUT)
        import psutil  # the bench extra: `scorer run` and the other commands must not need it

        self.ps = psutil.Process(self.proc.pid)
        self.peak_rss = 0

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def sample(self) -> None:
        self.peak_rss = max(self.peak_rss, self.ps.memory_info().rss)

    def stop(self) -> None:
        if self.proc.poll() is None:
            # Under py-spy: stop the runner itself; py-spy writes the profile when it exits.
            targets = self.ps.children() if self.profiling else [self.ps]
            for target in targets:
                target.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def drain(name: str, command: Command, bootstrap: str, items: list[Payload], kinds: tuple[EventKind, ...],
                partitions: int, workdir: Path, metrics_port: int | None = None, *,
                committed: bool = False, on_poll: Callable[[int, float], None] | None = None) -> RunResult:
    """``committed``: count the records the runner's group has committed, not its outputs;
    ``on_poll``: :func:`scorer.bench.counting.watch_drain`'s."""
    topics, out = await make_topics(bootstrap, kinds, partitions)
    gen = LoadGenerator(bootstrap, topics, len(items))
    await gen.run(items)
    group = f"{name}-{uuid.uuid4().hex[:6]}"
    argv, env = command(bootstrap, topics, out, group)
    log = workdir / f"{name}-drain.log"
    counter: Count = (CommittedCount(bootstrap, group, list(topics.values()), partitions) if committed
                      else OutputCount(bootstrap, out, partitions))
    try:
        async with counter as outputs:
            runner = RunnerProcess(argv, env, log)
            try:
                w = await watch_drain(outputs, runner, len(items), f"{name} (see {log})", on_poll)
                after = runner_metrics.scrape(metrics_port)
            finally:
                runner.stop()
    finally:
        await drop_topics(bootstrap, out)
    done, seconds = w.count1 - w.count0, w.t1 - w.t0
    return RunResult(
        runner=name, events=len(items), throughput_eps=round(done / seconds, 1) if seconds else 0.0,
        cpu_us_per_event=round((w.cpu1 - w.cpu0) / max(done, 1) * 1e6, 2),
        # Means over every batch of the run (a short drain may be over before a first scrape).
        peak_rss_mb=round(runner.peak_rss / 2**20, 1), batch_mean=runner_metrics.batch_means({}, after),
        consumed_by_worker=runner_metrics.consumed_by_worker(after),
        note=("" if w.count1 >= len(items) else f"only {w.count1} of {len(items)} outputs in time")
        or ("" if seconds else "too short to time: every output arrived at once (raise --events)"),
    )


async def fixed_rate(name: str, command: Command, bootstrap: str, items: list[Payload], kinds: tuple[EventKind, ...],
                     partitions: int, workdir: Path, rate: float, metrics_port: int | None = None) -> RunResult:
    topics, out = await make_topics(bootstrap, kinds, partitions)
    gen = LoadGenerator(bootstrap, topics, len(items))
    watcher = OutputWatcher(bootstrap, out, gen.sent_at)
    watch = asyncio.create_task(watcher.run())
    argv, env = command(bootstrap, topics, out, f"{name}-{uuid.uuid4().hex[:6]}")
    runner = RunnerProcess(argv, env, workdir / f"{name}-rate.log")
    try:
        # Warm-up at the offered rate: the runner joins, output topics elect their leaders,
        # models run once. Start-up stalls (100+ ms) must not be counted as steady state.
        warm = min(int(rate * WARM_UP_S), len(items) // 3)
        await gen.run(items[:warm], rate=rate)
        while watcher.count < warm:
            if runner.proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see {workdir}/{name}-rate.log")
            await asyncio.sleep(0.05)
        watcher.latencies.clear()
        added_before = runner_metrics.scrape(metrics_port)
        cpu0, measured_from = runner.cpu(), time.perf_counter()
        seconds = await gen.run(items[warm:], rate=rate, start=warm)
        deadline = time.perf_counter() + 60
        while watcher.count < len(items) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
            runner.sample()
        runner.sample()  # at least once, even if every output was in before the wait
        # The runner's CPU over the measured phase: at a light rate, batches are small and
        # per-batch costs (and the loop's own turns) show here, not in a drain.
        cpu_s, measured_to = runner.cpu() - cpu0, time.perf_counter()
        added_after = runner_metrics.scrape(metrics_port)
        histograms = runner_metrics.histograms(added_before, added_after)
        added = {k: v for k, v in histograms.get("scorer_added_latency_seconds", {}).items() if k != "count"}
    finally:
        runner.stop()
        watcher.stop()
        await watch
        await drop_topics(bootstrap, out)
    return RunResult(
        runner=name, events=len(items) - warm, throughput_eps=0.0,
        cpu_us_per_event=round(cpu_s / max(len(items) - warm, 1) * 1e6, 2),
        peak_rss_mb=round(runner.peak_rss / 2**20, 1), rate_offered_eps=rate,
        rate_achieved_eps=round((len(items) - warm) / seconds, 1), e2e_ms=_percentiles(watcher.latencies),
        added_ms=added, batch_mean=runner_metrics.batch_means(added_before, added_after),
        histograms=histograms, measured=(measured_from, measured_to),
    )


def python() -> str:
    return sys.executable
