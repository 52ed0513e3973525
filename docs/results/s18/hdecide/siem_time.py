"""siem_time.py: the SIEM forest alone, 683 rows, AVX-512: µs a call, the 8 best of 15 rounds of 30 (PYTHONPATH=<tree>)."""
import time, numpy as np
from scorer.inference.repository import load_version
from scorer.inference.vectorized import VectorizedTrees, forest_arrays
from tests.support.paths import MODEL_REPOSITORY
v = load_version(MODEL_REPOSITORY, "siem_classifier")
a, base = forest_arrays(v.onnx_path.read_bytes()); k = len(v.card.feature_names)
t = VectorizedTrees(a, base, k)
x = np.random.default_rng(1).normal(size=(683, k)).astype(np.float32); out = np.empty(683, np.float32)
res = []
for _ in range(15):
    t0 = time.perf_counter()
    for _ in range(30): t.forest.score(x, out, kernel="avx512")
    res.append((time.perf_counter() - t0) / 30 * 1e6)
print(" ".join(f"{r:.0f}" for r in sorted(res)[:8]))
