"""The scorer's own path on a GPU host: a call scored in process (compiled trees) or sent to Triton.

    python -m deploy.gpu.route_bench --url 127.0.0.1:8001 --features feats.npz \
        --sizes 1,16,64,255,1024,4096 --rounds 3 --duration 0.4 --out route.json

The service with ``inference.in_process_engine: compiled``, ``on_triton_outage: fallback`` and
``inference.in_process_below_rows: N`` scores a call of fewer than N rows with the version's
compiled trees in its own process and sends the others to Triton (on a GPU host the router
under the production name: compiled trees in the server below 256 rows, nvForest above).
This builds that backend as scorer.service.build does (FailoverBackend over TritonBackend and
OnnxRuntimeBackend with the compiled engine) twice over the same two components: N above
every size (every call in process) and N = 0 (every call to Triton), and times one call at a
time per kind and call size, the two alternated round by round so a slow second of the
machine lands on both. Per point: p50/p99 µs per call, rows/s, and the backend each call's
scores came from. The N to set is the size from which Triton answers faster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from deploy.gpu.bench_common import Matrix, machine_info, stats, tile
from scorer.inference.base import ModelRef
from scorer.inference.failover import FailoverBackend
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.inference.triton import TritonBackend

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("netflow_classifier", "edr_classifier", "siem_classifier")
ROUTES = ("in_process", "triton")
EVERY_CALL = 2**31 - 1  # in_process_below_rows above any call: every call in process


def inputs(x: Matrix, size: int, count: int = 8) -> list[Matrix]:
    """``count`` calls of ``size`` rows starting at different rows (one-row calls differ)."""
    return [tile(np.roll(x, -k * size, axis=0), size) for k in range(count)]


async def time_calls(backend: FailoverBackend, ref: ModelRef, calls: list[Matrix], *, duration_s: float,
                     min_calls: int, latencies: list[float], sources: set[str]) -> float:
    """Calls back to back, one at a time, for ``duration_s`` and at least ``min_calls``;
    appends each call's seconds; returns the wall time."""
    began = time.perf_counter()
    n = 0
    while n < min_calls or time.perf_counter() - began < duration_s:
        t0 = time.perf_counter()
        _, source = await backend.infer_with_source(ref, calls[n % len(calls)])
        latencies.append(time.perf_counter() - t0)
        sources.add(source)
        n += 1
    return time.perf_counter() - began


def break_even(points: list[dict[str, Any]], model: str) -> int | None:
    """The smallest size from which every measured size answers faster through Triton (p50):
    the in_process_below_rows to set for ``model``; None when in process wins everywhere."""
    p50: dict[tuple[int, str], float] = {(p["rows"], p["route"]): p["p50_us"] for p in points if p["model"] == model}
    sizes = sorted({rows for rows, _ in p50})
    for i, size in enumerate(sizes):
        if all(p50[(s, "triton")] < p50[(s, "in_process")] for s in sizes[i:]):
            return size
    return None


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    feats = np.load(args.features)
    sizes = [int(v) for v in args.sizes.split(",")]
    local = OnnxRuntimeBackend(args.repository, engine="compiled", compiled_cache=args.compiled_cache)
    triton = TritonBackend(args.url, timeout_s=60.0)
    backends = {"in_process": FailoverBackend(triton, local, local_below_rows=EVERY_CALL),
                "triton": FailoverBackend(triton, local, local_below_rows=0)}
    await backends["triton"].start()  # starts both components; the other wraps the same ones
    points: list[dict[str, Any]] = []
    report: dict[str, Any] = {"info": machine_info(), "argv": args.argv, "loadavg_before": os.getloadavg(),
                              "engines": {}, "points": points}
    try:
        for model in args.models.split(","):
            t0 = time.perf_counter()
            ref = ModelRef(model)  # the latest version, in process and on the server alike
            engine = local.engine_of(ref)  # loads it: builds (or finds) the library, checks it
            report["engines"][model] = {"version": local.model_version(ref).version, "in_process_engine": engine,
                                        "load_s": round(time.perf_counter() - t0, 2)}
            x = np.asarray(feats[model], dtype=np.float32)
            for size in sizes:
                calls = inputs(x, size)
                same = [await backends[r].infer(ref, calls[0]) for r in ROUTES]
                lat: dict[str, list[float]] = {r: [] for r in ROUTES}
                wall = dict.fromkeys(ROUTES, 0.0)
                seen: dict[str, set[str]] = {r: set() for r in ROUTES}
                for _ in range(args.warmup):
                    for route in ROUTES:
                        await backends[route].infer(ref, calls[0])
                for i in range(args.rounds):
                    for route in ROUTES if i % 2 == 0 else ROUTES[::-1]:
                        wall[route] += await time_calls(backends[route], ref, calls, duration_s=args.duration,
                                                        min_calls=args.min_calls, latencies=lat[route],
                                                        sources=seen[route])
                for route in ROUTES:
                    row = {"model": model, "rows": size, "route": route, "scored_by": sorted(seen[route]),
                           **stats(lat[route], size, wall[route]),
                           "max_abs_diff_between_routes": float(np.max(np.abs(same[0] - same[1])))}
                    points.append(row)
                    print(f"{model} {size:>5} rows {route:<10} p50 {row['p50_us']:>9} p99 {row['p99_us']:>9} us "
                          f"{row['rows_per_s']:>12,.0f} rows/s by {','.join(row['scored_by'])}", flush=True)
            report["engines"][model]["break_even_rows"] = break_even(points, model)
    finally:
        await backends["triton"].close()
    report["loadavg_after"] = os.getloadavg()  # the host's other work over the run
    return report


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--url", default="127.0.0.1:8001", help="Triton's gRPC address (the production names)")
    p.add_argument("--features", type=Path, required=True, help="client_bench's .npz of real feature rows")
    p.add_argument("--repository", type=Path, default=ROOT / "model_repository")
    p.add_argument("--compiled-cache", type=Path, default=None, help="the compiled engine's cache (default ~/.cache)")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--sizes", default="1,16,64,255,1024,4096", help="rows per call")
    p.add_argument("--rounds", type=int, default=3, help="alternations of the two routes per point")
    p.add_argument("--duration", type=float, default=0.4, help="seconds per route per round")
    p.add_argument("--min-calls", type=int, default=30, help="calls per route per round, at least")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    report = asyncio.run(bench(args))
    for model, engine in report["engines"].items():
        print(f"{model}: in process by {engine['in_process_engine']}, Triton faster from "
              f"{engine['break_even_rows']} rows (p50)")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
