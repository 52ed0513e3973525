"""GPU scoring of the shipped tree ensembles (torch, CUDA) against ONNX Runtime on CPU.

Run on a GPU machine with the feature matrices made here::

    python -m scorer.bench.gpu_trees --features feats.npz --repository model_repository

For each model and batch size: ONNX Runtime CPU (1 thread, all threads), torch CUDA eager
and CUDA-graph replay, each timed end to end as the scorer would see it (features copied
host -> device, scores copied back), plus the largest score difference to ONNX Runtime.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from scorer.inference.trees import as_arrays, load_tables, predict

BATCHES = (1, 64, 1024, 8192, 65536)


def _time(fn: Any, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _stats(samples: list[float], rows: int) -> dict[str, float]:
    arr = np.asarray(samples)
    return {"p50_us": round(float(np.percentile(arr, 50)) * 1e6, 1),
            "p99_us": round(float(np.percentile(arr, 99)) * 1e6, 1),
            "rows_per_s": round(rows / float(np.median(arr)), 0)}


def bench_model(name: str, onnx_path: Path, x_all: npt.NDArray[np.float32], repeat: int) -> list[dict[str, Any]]:
    import torch

    dev = torch.device("cuda")
    tables = as_arrays(load_tables(onnx_path), to=lambda a: torch.as_tensor(a, device=dev))
    sessions = {}
    for threads in (1, os.cpu_count() or 1):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sessions[threads] = ort.InferenceSession(str(onnx_path), opts)
    rows: list[dict[str, Any]] = []
    for batch in BATCHES:
        x = np.ascontiguousarray(x_all[np.arange(batch) % len(x_all)])
        row = {"model": name, "batch": batch, **_bench_batch(tables, sessions, x, repeat)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _bench_batch(
    tables: dict[str, Any], sessions: dict[int, Any], x: npt.NDArray[np.float32], repeat: int
) -> dict[str, Any]:
    import torch

    dev = torch.device("cuda")
    batch = x.shape[0]
    ref = sessions[1].run(["probabilities"], {"features": x})[0][:, 1]
    row: dict[str, Any] = {}
    for threads, sess in sessions.items():
        sess.run(["probabilities"], {"features": x})
        row[f"ort_cpu_{threads}t"] = _stats(_time(lambda s=sess: s.run(["probabilities"], {"features": x}),
                                                  repeat), batch)
    pinned = torch.from_numpy(x).pin_memory()

    def eager() -> Any:
        return predict(tables, pinned.to(dev, non_blocking=True), torch).cpu().numpy()

    got = eager()
    row["torch_cuda_eager"] = _stats(_time(eager, repeat), batch)
    # CUDA graph: one launch replays the whole traversal (depth x a few kernels otherwise).
    static_x = pinned.to(dev)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            predict(tables, static_x, torch)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = predict(tables, static_x, torch)
    host_out = torch.empty(batch, dtype=static_out.dtype).pin_memory()

    def replay() -> None:
        static_x.copy_(pinned, non_blocking=True)
        graph.replay()
        host_out.copy_(static_out, non_blocking=True)
        torch.cuda.current_stream().synchronize()

    replay()
    row["torch_cuda_graph"] = _stats(_time(replay, repeat), batch)
    row["max_abs_diff_vs_ort"] = float(max(np.abs(got - ref).max(), np.abs(host_out.numpy() - ref).max()))
    return row


def main() -> None:
    import torch

    p = argparse.ArgumentParser()
    p.add_argument("--features", type=Path, required=True)
    p.add_argument("--repository", type=Path, default=Path("model_repository"))
    p.add_argument("--repeat", type=int, default=200)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    feats = np.load(args.features)
    info = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "onnxruntime": ort.__version__,
            "cpu_count": os.cpu_count()}
    print(json.dumps(info), flush=True)
    results = []
    for kind in ("netflow", "edr", "siem"):
        path = args.repository / f"{kind}_classifier" / "1" / "model.onnx"
        results += bench_model(kind, path, feats[kind].astype(np.float32), args.repeat)
    if args.out:
        args.out.write_text(json.dumps({"info": info, "results": results}, indent=1))


if __name__ == "__main__":
    main()
