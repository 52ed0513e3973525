"""Many scorers, one GPU: N client processes, each the scorer's own TritonBackend, one Triton.

    python -m deploy.gpu.scorers_bench --url 127.0.0.1:8001 --features feats.npz \
        --engine nvforest --processes 1,4,16 --duration 5 [--shared-memory] --out scorers.json

Each process plays one scorer: per micro-batch it scores the three kinds' rows at once
(``asyncio.gather`` of ``TritonBackend.infer``, the service's own client, on
``<model>_<engine>``), with each kind's share of a ``--micro-batch``-record micro-batch as
the bundled capture mixes them, back to back for ``--duration`` seconds after a warm-up.
Reported per N: aggregate rows/s over the common window (first start to last end), p50/p99
per request (per kind and overall), and the GPU's utilisation sampled by nvidia-smi while
the clients ran. The N at which rows/s stops growing while the GPU is not yet busy is
where the clients are the limit; where utilisation nears 100% the GPU is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from deploy.gpu.bench_common import machine_info, served_name, tile

MODELS = ("netflow_classifier", "edr_classifier", "siem_classifier")


def kind_batches(feats: Any, micro_batch: int) -> dict[str, int]:
    """Each model's rows in one micro-batch of ``micro_batch`` records, as the capture mixes them."""
    counts = {m: len(feats[m]) for m in MODELS}
    total = sum(counts.values())
    return {m: max(1, round(micro_batch * n / total)) for m, n in counts.items()}


async def _scorer(url: str, engine: str, matrices: dict[str, Any], duration_s: float,
                  start_at: float, shared_memory: bool) -> dict[str, Any]:
    from scorer.inference.base import ModelRef
    from scorer.inference.triton import TritonBackend
    from scorer.inference.triton_shm import SharedMemoryTritonBackend

    refs = {m: ModelRef(served_name(m, engine)) for m in matrices}
    # What SCORER_INFERENCE__TRITON_SHARED_MEMORY chooses in the service (scorer.service.build).
    cls = SharedMemoryTritonBackend if shared_memory else TritonBackend
    backend = cls(url, list(refs.values()), timeout_s=60.0)
    await backend.start()
    latencies: dict[str, list[float]] = {m: [] for m in matrices}

    async def one(model: str) -> None:
        t0 = time.perf_counter()
        await backend.infer(refs[model], matrices[model])
        latencies[model].append(time.perf_counter() - t0)

    for _ in range(3):  # warm-up: channel, server buffers
        await asyncio.gather(*(backend.infer(refs[m], x) for m, x in matrices.items()))
    for model in latencies:
        latencies[model].clear()
    while time.time() < start_at:  # every process starts together
        await asyncio.sleep(0.001)
    began = time.time()
    batches = 0
    while time.time() - began < duration_s:
        await asyncio.gather(*(one(m) for m in matrices))
        batches += 1
    ended = time.time()
    await backend.close()
    return {"began": began, "ended": ended, "micro_batches": batches, "latencies": latencies,
            "rows": batches * sum(len(x) for x in matrices.values())}


def _process(args: tuple[str, str, dict[str, Any], float, float, bool], queue: Any) -> None:
    try:
        queue.put(asyncio.run(_scorer(*args)))
    except Exception as exc:  # reported, not raised: the parent records it
        queue.put({"error": f"{type(exc).__name__}: {exc}"[:500]})


class GpuSampler(threading.Thread):
    """nvidia-smi's utilisation.gpu every ~100 ms while the clients run."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        cmd = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "100"]
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        except OSError:
            return
        assert proc.stdout is not None
        while not self.stop.is_set():
            line = proc.stdout.readline()
            if not line:
                break
            with contextlib.suppress(ValueError, IndexError):  # a header or partial line
                self.samples.append(float(line.strip().splitlines()[0]))
        proc.terminate()
        proc.wait(timeout=10)


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all the host's cores so far (/proc/stat; zeros elsewhere)."""
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def run_point(url: str, engine: str, matrices: dict[str, Any], n: int, duration_s: float, *,
              shared_memory: bool = False) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 8.0 + 0.4 * n  # spawn, imports and warm-up of every process first
    procs = [ctx.Process(target=_process, args=((url, engine, matrices, duration_s, start_at, shared_memory), queue))
             for _ in range(n)]
    for p in procs:
        p.start()
    sampler = GpuSampler()
    while time.time() < start_at:
        time.sleep(0.01)
    sampler.start()
    cpu_before = cpu_times()
    results = [queue.get(timeout=duration_s + 300) for _ in procs]
    cpu_after = cpu_times()
    sampler.stop.set()
    for p in procs:
        p.join(timeout=30)
    row: dict[str, Any] = {"engine": engine, "processes": n, "shared_memory": shared_memory,
                           "rows_per_micro_batch": {m: len(x) for m, x in matrices.items()}}
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        row["errors"] = errors
    ok = [r for r in results if "error" not in r]
    if not ok:
        return row
    window = max(r["ended"] for r in ok) - min(r["began"] for r in ok)
    row["rows_per_s"] = round(sum(r["rows"] for r in ok) / window, 0)
    row["micro_batches"] = sum(r["micro_batches"] for r in ok)
    row["micro_batches_per_s"] = round(row["micro_batches"] / window, 1)
    every: list[float] = []
    for model in matrices:
        lat = np.asarray([v for r in ok for v in r["latencies"][model]]) * 1e6
        every += lat.tolist()
        row[f"{model}_p50_us"] = round(float(np.percentile(lat, 50)), 1)
        row[f"{model}_p99_us"] = round(float(np.percentile(lat, 99)), 1)
    row["requests"] = len(every)
    row["p50_us"] = round(float(np.percentile(every, 50)), 1)
    row["p99_us"] = round(float(np.percentile(every, 99)), 1)
    busy, total = (after - before for after, before in zip(cpu_after, cpu_before, strict=True))
    if total > 0:  # every core of the host: clients, server and its python stubs together
        row["host_cpu_busy_pct"] = round(100.0 * busy / total, 1)
    if sampler.samples:
        row["gpu_util_mean_pct"] = round(float(np.mean(sampler.samples)), 1)
        row["gpu_util_p90_pct"] = round(float(np.percentile(sampler.samples, 90)), 1)
        row["gpu_util_samples"] = len(sampler.samples)
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="127.0.0.1:8001")
    p.add_argument("--features", type=Path, required=True)
    p.add_argument("--engine", default="nvforest")
    p.add_argument("--processes", default="1,4,16")
    p.add_argument("--micro-batch", type=int, default=4096, help="records per micro-batch (SCORER_BATCH__MAX_RECORDS)")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--shared-memory", action="store_true", help="the scorer's system shared memory client")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    feats = np.load(args.features)
    sizes = kind_batches(feats, args.micro_batch)
    matrices = {m: tile(feats[m].astype(np.float32), rows) for m, rows in sizes.items()}
    report: dict[str, Any] = {"info": machine_info(), "argv": sys.argv[1:] if argv is None else argv, "points": []}
    for n in (int(v) for v in args.processes.split(",")):
        row = run_point(args.url, args.engine, matrices, n, args.duration, shared_memory=args.shared_memory)
        report["points"].append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
