"""forest_time.py: the shipped models' forests alone, µs per call of N rows, each kernel (hot, best of 7).
Run with PYTHONPATH=<tree> to time that tree's _forest; the rows are random (the kernels take no
branch on the data)."""
import sys, time
import numpy as np
from scorer.inference.repository import load_version
from scorer.inference.vectorized import VectorizedTrees, forest_arrays
from tests.support.paths import MODEL_REPOSITORY
import scorer.native._forest as _forest

rng = np.random.default_rng(1)
for name in ("netflow_classifier", "edr_classifier", "siem_classifier"):
    v = load_version(MODEL_REPOSITORY, name)
    arrays, base = forest_arrays(v.onnx_path.read_bytes())
    n_features = len(v.card.feature_names)
    trees = VectorizedTrees(arrays, base, n_features)
    line = []
    for n in (17, 50, 683):
        x = rng.normal(size=(n, n_features)).astype(np.float32)
        out = np.empty(n, np.float32)
        for kernel in _forest.kernels()[1:]:
            reps = max(20, 20000 // n)
            best = 1e9
            for _ in range(7):
                t0 = time.perf_counter()
                for _ in range(reps):
                    trees.forest.score(x, out, kernel=kernel)
                best = min(best, (time.perf_counter() - t0) / reps)
            line.append(f"{n}r {kernel} {best * 1e6:8.1f}")
    print(f"{name:20s} " + " | ".join(line))
