"""The tree models served by Triton on a GPU (deploy/gpu/launch.py), measured from the client.

    python -m deploy.gpu.client_bench features --out feats.npz        # here: real feature rows
    python -m deploy.gpu.client_bench floor --url 127.0.0.1:8001     # gRPC round trip, no model
    python -m deploy.gpu.client_bench run --url 127.0.0.1:8001 --features feats.npz \
        --models netflow_classifier --engines nvforest,onnxruntime --transports grpc,shm,cudashm \
        --concurrency 1,4,16 --out gpu_triton.json                         # on the GPU host

Per model, engine (``<model>_<engine>`` on the server), transport, requests in flight and
batch size: client-observed latency per request (p50/p99), rows/s over the wall time, and
Triton's own per-request queue/compute times over the same requests. Transports
(:mod:`deploy.gpu.transports`): ``grpc`` (tensors in the protobuf), ``shm`` (system shared
memory regions registered with the server), ``cudashm`` (CUDA memory on GPU 0 shared by IPC);
the client writes each request's features into its region and reads the scores back inside
the timed loop, as a real caller must.
``cudashm`` copies from pageable numpy (tritonclient's own path); ``cudashm-pinned`` from
page-locked host memory, scores back into page-locked memory (CuPy on the region); and
``cudashm-gpu`` for rows that already live on the GPU (a device-to-device copy in, scores left
on the GPU). ``grpc-raw``: the same gRPC call with the request protobuf built directly (no
tritonclient objects): what the Python gRPC stack itself costs.
deploy/gpu/inprocess_bench.py times the server model's own engine in one process: the limit
the transports are compared to.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from deploy.gpu.bench_common import Matrix, capture_features, machine_info, served_name, stats, tile
from deploy.gpu.transports import Transport

BATCHES = (1, 64, 256, 1024, 4096, 8192, 65536)
ROOT = Path(__file__).resolve().parents[2]


def measure(transports: list[Transport], x: Matrix, *, duration_s: float, min_requests: int) -> dict[str, float]:
    """Each transport in its own thread, back to back, until the time and count are reached."""
    latencies: list[list[float]] = [[] for _ in transports]
    for t in transports:
        for _ in range(3):  # warm-up: connections, server-side buffers
            t.infer(x)
    start = time.perf_counter()
    deadline = start + duration_s

    def loop(i: int) -> None:
        while time.perf_counter() < deadline or len(latencies[i]) < min_requests:
            t0 = time.perf_counter()
            transports[i].infer(x)
            latencies[i].append(time.perf_counter() - t0)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(transports))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return stats([v for per in latencies for v in per], len(x), time.perf_counter() - start)


def server_stats(client: Any, model: str) -> dict[str, int]:
    """Triton's cumulative counters for ``model``: requests and ns per phase."""
    s = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    inf = s["inference_stats"]
    out = {"executions": int(s.get("execution_count", 0)), "requests": int(inf["success"].get("count", 0))}
    for phase in ("queue", "compute_input", "compute_infer", "compute_output"):
        out[f"{phase}_ns"] = int(inf[phase].get("ns", 0))
    return out


def per_request(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    n = max(after["requests"] - before["requests"], 1)
    out = {f"server_{k[:-3]}_us": round((after[k] - before[k]) / n / 1e3, 1) for k in after if k.endswith("_ns")}
    out["server_requests_per_execution"] = round(n / max(after["executions"] - before["executions"], 1), 2)
    return out


def bench_server(args: argparse.Namespace, feats: Any) -> list[dict[str, Any]]:
    import onnxruntime as ort

    rows: list[dict[str, Any]] = []
    pid = os.getpid()
    for model in args.models:
        onnx_path = args.repository / model / "1" / "model.onnx"
        reference = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        x_all = feats[model].astype(np.float32)
        for engine in args.engines:
            served = served_name(model, engine)
            for kind in args.transports:
                if kind not in ("grpc", "grpc-raw") and engine == "onnxruntime":
                    continue  # the CPU comparison is over plain gRPC; shm variants are the GPU study
                for conc in args.concurrency:
                    for batch in args.batches:
                        x = tile(x_all, batch)
                        row: dict[str, Any] = {"model": model, "engine": engine, "transport": kind,
                                               "in_flight": conc, "batch": batch}
                        transports: list[Transport] = []
                        try:
                            transports = [Transport(args.url, served, kind, batch, x.shape[1], f"{pid}_{i}")
                                          for i in range(conc)]
                            want = reference.run(["probabilities"], {"features": x})[0]
                            got = transports[0].infer(x)
                            got = got.get() if not isinstance(got, np.ndarray) else got  # CuPy: cudashm-gpu
                            row["max_abs_diff_vs_ort"] = float(np.abs(got - want).max())
                            before = server_stats(transports[0].client, served)
                            row.update(measure(transports, x, duration_s=args.duration,
                                               min_requests=args.min_requests))
                            row.update(per_request(before, server_stats(transports[0].client, served)))
                        except Exception as exc:  # record and go on: one failure must not void the run
                            row["error"] = f"{type(exc).__name__}: {exc}"[:500]
                        finally:
                            for t in transports:
                                try:
                                    t.close()
                                except Exception as exc:
                                    row.setdefault("close_error", str(exc)[:200])
                        rows.append(row)
                        print(json.dumps(row), flush=True)
    return rows


def floor(url: str, duration_s: float) -> dict[str, Any]:
    """gRPC's own round trip to the server, no model: ``ServerLive`` over a raw stub, one in
    flight. What any model's batch-1 latency over gRPC from Python is bounded by."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    with grpc.insecure_channel(url) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = service_pb2.ServerLiveRequest()
        for _ in range(100):
            stub.ServerLive(request)
        latencies: list[float] = []
        start = time.perf_counter()
        while time.perf_counter() - start < duration_s or len(latencies) < 100:
            t0 = time.perf_counter()
            stub.ServerLive(request)
            latencies.append(time.perf_counter() - t0)
    return {"rpc": "ServerLive", **stats(latencies, 0, time.perf_counter() - start)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("features").add_argument("--out", type=Path, required=True)
    rtt = sub.add_parser("floor", help="gRPC round trips without a model (ServerLive), one in flight")
    rtt.add_argument("--url", default="127.0.0.1:8001")
    rtt.add_argument("--duration", type=float, default=3.0, help="seconds to measure (default 3)")
    run = sub.add_parser("run")
    run.add_argument("--url", default="127.0.0.1:8001")
    run.add_argument("--features", type=Path, required=True)
    run.add_argument("--repository", type=Path, default=ROOT / "model_repository")
    run.add_argument("--models", default="netflow_classifier")
    run.add_argument("--engines", default="nvforest,onnxruntime")
    run.add_argument("--transports", default="grpc")
    run.add_argument("--concurrency", default="1")
    run.add_argument("--batches", default=",".join(map(str, BATCHES)))
    run.add_argument("--duration", type=float, default=1.0, help="seconds per point (at least)")
    run.add_argument("--min-requests", type=int, default=20)
    run.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.command == "features":
        print(json.dumps(capture_features(args.out)))
        return
    if args.command == "floor":
        print(json.dumps(floor(args.url, args.duration)))
        return
    for name in ("models", "engines", "transports"):
        setattr(args, name, getattr(args, name).split(","))
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.batches = [int(b) for b in args.batches.split(",")]
    feats = np.load(args.features)
    report: dict[str, Any] = {"info": machine_info(), "argv": sys.argv[1:] if argv is None else argv}
    report["server"] = bench_server(args, feats)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
