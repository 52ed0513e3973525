"""One process per core: ``scorer run --processes N`` draining a backlog, N side by side.

    python -m scorer.bench.processes --processes 1 --processes 2 --events 300000 --repeat 3 \\
        --out docs/results/bench-processes.json

Each drain preloads ``--events`` events on fresh topics (``--partitions`` per kind, so the
group can split every kind evenly), starts the supervisor with N workers and measures the
output topic from its first record to the last (``scorer bench``'s drain phase; with
``--outputs alerts``, the service's default, the offsets the group commits); runs are
interleaved over N, ``--repeat`` times, and the ratios use each N's median. The host's
CPU time per process name over each drain (psutil, the whole machine) says what else took
the cores: on a shared machine the broker, the load generator and other work compete with
the workers, so "N processes" never means N idle cores. It is given over the whole run
(start-up included) and from a quarter to three quarters of the events (``steady_*``: what an
event costs once every worker runs).

Start-up: the drain's polls of the output topic (every 10 ms, from the broker: nothing is
asked of the runner while it is measured) say when the first record was written and the
rate between a quarter and three quarters of the events (``steady_events_per_s``): N workers
join one by one and every join rebalances the group, so a drain that is short against the
start-up under-counts what N workers do once running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import psutil

from scorer.bench import harness
from scorer.bench.cli import COMPILED, VECTORIZED, _command, add_outputs_argument
from scorer.bench.latency import write_report
from scorer.bench.loadgen import payloads, templates
from scorer.bench.realistic import add_stream_arguments, stream_templates
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind
from scorer.service.supervisor import free_port_block

RUNNER = "scorer-onnxruntime"


Snapshot = dict[int, float]  # CPU seconds per pid at one sample


class CpuWatch:
    """CPU seconds every process of the host used while it ran, by a short name: sampled
    every ``interval`` s per pid, so processes that start (the workers) or exit (other
    people's tests) during the drain are counted for the part that was seen. Between two
    :meth:`snapshot` s, too: the drain's steady part, without the workers' start-up."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self._me = psutil.Process().pid

    def sample(self) -> None:
        for p in psutil.process_iter(["name", "cmdline", "cpu_times"]):
            times = p.info["cpu_times"]
            if times is None:
                continue
            used = times.user + times.system
            if p.pid not in self.names:
                self.names[p.pid] = self._name(p.pid, p.info["name"], " ".join(p.info["cmdline"] or []))
                self.first[p.pid] = used
            self.last[p.pid] = used

    def snapshot(self) -> Snapshot:
        """Every process's CPU seconds now (a sample taken for it)."""
        self.sample()
        return dict(self.last)

    def _name(self, pid: int, name: str | None, cmd: str) -> str:
        if pid == self._me:
            return "bench (load generator, output reader)"
        if "scorer.cli" in cmd and " run" in cmd:
            return "scorer supervisor" if "--processes" in cmd else "scorer workers"
        if "kafka.Kafka" in cmd:
            return "kafka brokers"
        return name or "?"

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self.sample)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    def used(self, at_least: float = 0.5, since: Snapshot | None = None,
             until: Snapshot | None = None) -> dict[str, float]:
        """CPU seconds by name from the first sample (or snapshot ``since``; a process first seen
        after it: from its first sample) to the last (or ``until``)."""
        by_name: dict[str, float] = {}
        start, end = since or self.first, until or self.last
        for pid, name in self.names.items():
            if pid in end:
                by_name[name] = by_name.get(name, 0.0) + end[pid] - start.get(pid, self.first[pid])
        ranked = sorted(by_name.items(), key=lambda kv: -kv[1])
        return {name: round(s, 2) for name, s in ranked if s >= at_least}

    def scorer_s(self, since: Snapshot | None = None, until: Snapshot | None = None) -> float:
        """The scorer's CPU seconds: the supervisor's and every worker's. (The drain's own
        cpu_us_per_event reads the launched pid only: the supervisor alone when there are
        workers.)"""
        return sum(s for name, s in self.used(0.0, since, until).items() if name.startswith("scorer "))


class Progress:
    """Records the runner has written over time since its launch: every poll of the drain's
    output count (:func:`scorer.bench.counting.watch_drain`), read from the broker. Not the
    runner's ``/metrics``: a supervisor parses and merges its workers' expositions on each
    scrape, ~1.5 s of CPU over a 300,000-event drain of two workers if scraped every 0.2 s, on
    the cores the workers are measured on. With a ``watch``, the host's CPU is snapshot at the
    polls that first see a quarter and three quarters of the ``events`` written: the steady
    part's CPU, without start-up (~3 s of CPU a worker here: imports, models, rule pack)."""

    def __init__(self, watch: CpuWatch | None = None, events: int = 0) -> None:
        self.launched: float | None = None
        self.seen: list[tuple[float, float]] = []  # (s since launch, records written or committed)
        self.watch, self.events = watch, events
        self.marks: list[tuple[int, Snapshot]] = []  # (records done, CPU) at a quarter, three quarters

    def poll(self, done: int, at: float) -> None:
        if self.launched is not None:
            self.seen.append((round(at - self.launched, 2), done))
            if self.watch is not None and len(self.marks) < 2 and done >= self.events * (1 + 2 * len(self.marks)) / 4:
                self.marks.append((done, self.watch.snapshot()))

    def steady_cpu(self) -> dict[str, Any]:
        """Between the two snapshots: the host's CPU seconds by name, the scorer's per event."""
        if self.watch is None or len(self.marks) < 2 or self.marks[1][0] <= self.marks[0][0]:
            return {"steady_host_cpu_s": None, "steady_scorer_cpu_us_per_event": None}
        (n0, since), (n1, until) = self.marks
        return {"steady_host_cpu_s": self.watch.used(0.05, since, until),
                "steady_scorer_cpu_us_per_event": round(self.watch.scorer_s(since, until) / (n1 - n0) * 1e6, 2)}

    def summary(self, events: int) -> dict[str, float | None]:
        def first(at_least: float) -> float | None:
            return next((t for t, n in self.seen if n >= at_least and n > 0), None)

        start, quarter, three = first(1), first(events / 4), first(events * 3 / 4)
        steady = round(events / 2 / (three - quarter)) if quarter is not None and three and three > quarter else None
        return {"first_record_s": start, "quarter_s": quarter, "three_quarters_s": three,
                "steady_events_per_s": steady}


async def _drain(args: argparse.Namespace, n: int, items: list[Any], kinds: tuple[EventKind, ...],
                 workdir: Path) -> dict[str, Any]:
    base = _command(args.runner, args, 0)
    watch, stop = CpuWatch(), asyncio.Event()
    progress = Progress(watch, len(items))
    # /metrics, scraped once the drain is over: what each worker consumed (theirs: port + 1 .. port + n)
    port = free_port_block(n + 1)

    def command(bootstrap: str, topics: dict[EventKind, str], out: str, group: str) -> tuple[list[str], dict[str, str]]:
        argv, env = base(bootstrap, topics, out, group)
        env["SCORER_HTTP__PORT"] = str(port)
        progress.launched = time.perf_counter()
        return [*argv, "--processes", str(n)] if n > 1 else argv, env

    sampler = asyncio.create_task(watch.run(stop))
    try:
        res = await harness.drain(f"{args.runner}-x{n}", command, args.bootstrap, items, kinds, args.partitions,
                                  workdir, port, committed=args.outputs == "alerts", on_poll=progress.poll)
    finally:
        stop.set()
        await sampler
    return {"processes": n, "events_per_s": res.throughput_eps, "note": res.note, "host_cpu_s": watch.used(),
            "scorer_cpu_us_per_event": round(watch.scorer_s() / max(len(items), 1) * 1e6, 2),
            "start_up": progress.summary(len(items)), **progress.steady_cpu(),
            "consumed_by_worker": res.consumed_by_worker, "run": msgspec.to_builtins(res)}


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    kinds = tuple(EventKind(k) for k in args.kinds.split(","))
    items = list(payloads(stream_templates(args, templates(bundled_capture(), kinds)), args.events))
    workdir = Path(tempfile.mkdtemp(prefix="scorer-processes-"))
    runs: list[dict[str, Any]] = []
    for _ in range(args.repeat):
        for n in args.processes:
            run = await _drain(args, n, items, kinds, workdir)
            runs.append(run)
            print(f"{n:>2} processes: {run['events_per_s']:>9.0f} events/s {run['note']}\n"
                  f"   start-up (s from launch) and steady rate: {run['start_up']}\n"
                  f"   records consumed by worker: {run['consumed_by_worker']}\n"
                  f"   host CPU s over the run (start-up included): {run['host_cpu_s']}; the scorer's "
                  f"(supervisor and workers) {run['scorer_cpu_us_per_event']} us/event\n"
                  f"   from a quarter to three quarters of the events: {run['steady_host_cpu_s']}; the scorer's "
                  f"{run['steady_scorer_cpu_us_per_event']} us/event", flush=True)
    summary = summarise(runs, args.processes)
    print(json.dumps(summary, indent=2))
    return {"events": args.events, "partitions": args.partitions, "runner": args.runner, "stream": args.stream,
            "outputs": args.outputs, "summary": summary, "runs": runs, "logs": str(workdir)}


def summarise(runs: list[dict[str, Any]], counts: list[int]) -> dict[str, dict[str, float]]:
    """Per worker count: the median rate of the whole drains and of their steady parts, each
    against the first count's. A worker that joins after the others makes the group rebalance,
    and on a broker with ``group.initial.rebalance.delay.ms=0`` (the dev broker's) the first to
    join scores alone until it sees the others join at its next heartbeat (seconds): a
    drain short against that measures mostly one worker (docs/benchmarks.md section 60)."""
    def median(n: int, rate: Callable[[dict[str, Any]], float | None]) -> float:
        rates = [r for r in (rate(run) for run in runs if run["processes"] == n) if r]
        return float(np.median(rates)) if rates else 0.0

    summary: dict[str, dict[str, float]] = {f"x{n}": {} for n in counts}
    rates: tuple[tuple[str, Callable[[dict[str, Any]], float | None]], ...] = (
        ("", lambda r: r["events_per_s"]), ("steady_", lambda r: r["start_up"]["steady_events_per_s"]))
    for prefix, rate in rates:
        first = median(counts[0], rate)
        for n in counts:
            m = median(n, rate)
            summary[f"x{n}"] |= {f"median_{prefix}events_per_s": round(m),
                                 f"{prefix}vs_x{counts[0]}": round(m / first, 2) if first else 0.0}
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scorer.bench.processes", description=__doc__.split("\n")[0])
    p.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers (default: %(default)s)")
    p.add_argument("--processes", type=int, action="append",
                   help="worker counts to compare, repeatable; the first is the baseline (default: 1 and 2)")
    p.add_argument("--events", type=int, default=300_000, help="events preloaded per drain (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=3, help="drains per worker count, interleaved (default: %(default)s)")
    p.add_argument("--partitions", type=int, default=4,
                   help="partitions per topic; a multiple of every worker count splits evenly (default: %(default)s)")
    p.add_argument("--kinds", default="netflow,edr,siem", help="event kinds (default: %(default)s)")
    p.add_argument("--model-repository", type=Path, default=Path("model_repository"),
                   help="models the workers load (default: %(default)s)")
    p.add_argument("--runner", default=RUNNER, choices=(RUNNER, COMPILED, VECTORIZED),
                   help="scorer bench's runner the workers are (default: %(default)s)")
    p.add_argument("--max-records", type=int, default=None, help="SCORER_BATCH__MAX_RECORDS (default: the scorer's)")
    add_outputs_argument(p)
    p.add_argument("--out", type=Path, default=Path("out/bench-processes.json"),
                   help="JSON report (default: %(default)s)")
    add_stream_arguments(p)
    args = p.parse_args(argv)
    args.processes = args.processes or [1, 2]
    args.triton_url = ""
    return write_report(args.out, asyncio.run(_bench(args)))


if __name__ == "__main__":
    raise SystemExit(main())
