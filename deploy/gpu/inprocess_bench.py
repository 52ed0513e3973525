"""The served engines called in one process on the GPU host: the limit Triton is compared to.

    python -m deploy.gpu.inprocess_bench --features feats.npz --out inprocess.json \
        [--models netflow_classifier,... --batches 1,64,...,1048576 --engines nvforest,onnxruntime]

Per model and batch size, deploy/gpu/forest_scorer.py's ``score`` (the code the server's
model.py runs) timed call by call after a warm-up:

- ``device``: rows already on the GPU, scores left there (nvForest synchronizes before it
  returns): what a request that arrives through CUDA shared memory costs the model;
- ``pinned``: rows in pinned host memory copied to the GPU, scored, scores copied back to
  pinned host memory, synchronized: the whole round trip a caller in this process pays;
- CPU engines (``onnxruntime``, ``treelite``, ``nvforest-cpu``): numpy in and out.

Rows are the bundled capture's real feature rows (``client_bench features``) tiled to the
batch size. Every point checks its first result against ONNX Runtime on the same rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deploy.gpu import forest_scorer
from deploy.gpu.bench_common import machine_info, stats, tile

ROOT = Path(__file__).resolve().parents[2]
BATCHES = (1, 64, 256, 1024, 4096, 8192, 65536, 1048576)


def timed(call: Callable[[], Any], *, min_calls: int, min_s: float, max_calls: int) -> list[float]:
    """Per-call seconds: at least ``min_calls`` and ``min_s`` seconds, at most ``max_calls``."""
    for _ in range(3):
        call()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < min_calls or (time.perf_counter() - start < min_s and len(samples) < max_calls):
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    return samples


def gpu_paths(scorer: forest_scorer.ForestScorer, x: Any) -> dict[str, Callable[[], Any]]:
    import cupy as cp
    import cupyx

    on_device = cp.asarray(x)
    pinned_in = cupyx.empty_pinned(x.shape, np.float32)
    pinned_in[...] = x
    pinned_out = cupyx.empty_pinned((len(x), 2), np.float32)
    staging = cp.empty(x.shape, cp.float32)

    def pinned() -> Any:
        staging.set(pinned_in)
        scorer.score([staging])[0].get(out=pinned_out)
        return pinned_out

    # "forest": nvForest's own predict_proba alone (its launch and synchronization), the
    # floor under what score() adds (the two-column output, concatenation of parts).
    return {"device": lambda: scorer.score([on_device])[0], "pinned": pinned,
            "forest": lambda: scorer.forest.predict_proba(on_device)}


def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    import onnxruntime as ort

    feats = np.load(args.features)
    rows: list[dict[str, Any]] = []
    for model in args.models:
        version = args.repository / model / "1"
        reference = ort.InferenceSession(str(version / "model.onnx"), providers=["CPUExecutionProvider"])
        for engine in args.engines:
            try:
                scorer = forest_scorer.ForestScorer(version, engine, threads=args.threads, layout=args.layout)
            except Exception as exc:  # record and go on: one engine must not void the run
                rows.append({"model": model, "engine": engine, "error": f"{type(exc).__name__}: {exc}"[:500]})
                print(json.dumps(rows[-1]), flush=True)
                continue
            for batch in args.batches:
                if engine != "nvforest" and batch > args.cpu_max_batch:
                    continue
                x = tile(feats[model].astype(np.float32), batch)
                want = reference.run(["probabilities"], {"features": x})[0] if batch <= 65536 else None
                paths = gpu_paths(scorer, x) if scorer.on_gpu else {"host": lambda s=scorer, x=x: s.score([x])[0]}
                for path, call in paths.items():
                    row: dict[str, Any] = {"model": model, "engine": engine, "path": path, "batch": batch}
                    try:
                        got = call()
                        got = got.get() if hasattr(got, "get") and not isinstance(got, np.ndarray) else got
                        got = forest_scorer.two_columns(np.asarray(got, np.float32), np)
                        if want is not None:
                            row["max_abs_diff_vs_ort"] = float(np.abs(np.asarray(got) - want).max())
                        samples = timed(call, min_calls=args.min_calls, min_s=args.min_s, max_calls=args.max_calls)
                        row.update(stats(samples, batch, sum(samples)))
                    except Exception as exc:
                        row["error"] = f"{type(exc).__name__}: {exc}"[:500]
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--features", type=Path, required=True)
    p.add_argument("--repository", type=Path, default=ROOT / "model_repository")
    p.add_argument("--models", default="netflow_classifier,edr_classifier,siem_classifier")
    p.add_argument("--engines", default="nvforest,onnxruntime")
    p.add_argument("--batches", default=",".join(map(str, BATCHES)))
    p.add_argument("--cpu-max-batch", type=int, default=65536)
    p.add_argument("--threads", type=int, default=16, help="CPU engines' threads")
    p.add_argument("--layout", default="depth_first")
    p.add_argument("--min-calls", type=int, default=20)
    p.add_argument("--max-calls", type=int, default=2000)
    p.add_argument("--min-s", type=float, default=0.5)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    args.models, args.engines = args.models.split(","), args.engines.split(",")
    args.batches = [int(b) for b in args.batches.split(",")]
    report = {"info": machine_info(), "argv": sys.argv[1:] if argv is None else argv, "inprocess": bench(args)}
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
