"""Tree engines per row on the bundled capture's feature rows (real features), one process:
ONNX Runtime, the compiled trees (tl2cgen, -Os), the vectorized forest's kernels.
    PYTHONPATH=. .venv/bin/python docs/results/s16/trees.py   (docs/benchmarks.md section 39)"""
import time

import numpy as np

from scorer.inference.base import ModelRef
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.inference.vectorized import open_vectorized
from scorer.native import _forest
from deploy.gpu import bench_common
from tests.support.paths import MODEL_REPOSITORY

bench_common.capture_features("/tmp/s16-capture-feats.npz")
capture = np.load("/tmp/s16-capture-feats.npz")


def best(f, reps=25):
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


for model in ("netflow_classifier", "edr_classifier", "siem_classifier"):
    ort = OnnxRuntimeBackend(MODEL_REPOSITORY, engine="onnxruntime")
    lo = ort.load(ModelRef(model))
    lc = OnnxRuntimeBackend(MODEL_REPOSITORY, engine="compiled").load(ModelRef(model))
    vt = open_vectorized(lo.version, lambda r: ort._run(lo, r))
    golden = np.asarray(capture[model], np.float32)
    for n in (50, 2048):
        rows = np.ascontiguousarray(np.resize(golden, (n, golden.shape[1])), np.float32)
        got = {"onnxruntime": best(lambda: ort._run(lo, rows)), "compiled": best(lambda: lc.trees.score(rows))}
        for kernel in _forest.kernels()[1:]:
            got[kernel] = best(lambda: vt.score(rows, kernel))
        print(f"{model:19s} {n:5d} rows (of {len(golden)} capture rows): "
              + "  ".join(f"{k} {v / n * 1e6:6.3f}" for k, v in got.items())
              + f"  us/row median of 25 | compiled / avx512 {got['compiled'] / got['avx512']:.1f}x", flush=True)
