"""What every GPU-serving bench shares: input rows, point statistics, the machine's description.

The rows are the bundled capture's feature rows per model, as the scorer computes them
(``python -m deploy.gpu.client_bench features --out feats.npz``, run where the scorer is
installed: it needs the whole feature stack); the GPU host only reads the ``.npz``.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
# deploy/gpu/launch.py's engine that serves under the production name (the GPU host's router).
ROUTED = "routed"


def served_name(model: str, engine: str) -> str:
    """What ``engine``'s copy of ``model`` is called on the server: the router takes the
    production name (what scorers call), the others ``<model>_<engine>``."""
    return model if engine == ROUTED else f"{model}_{engine}"


def stats(latencies_s: list[float], rows_per_request: int, wall_s: float) -> dict[str, float]:
    """p50/p99 latency (µs) of the requests, and rows per second over the wall time."""
    arr = np.asarray(latencies_s)
    return {"requests": len(latencies_s),
            "p50_us": round(float(np.percentile(arr, 50)) * 1e6, 1),
            "p99_us": round(float(np.percentile(arr, 99)) * 1e6, 1),
            "rows_per_s": round(len(latencies_s) * rows_per_request / wall_s, 0)}


def tile(x: Matrix, rows: int) -> Matrix:
    return np.ascontiguousarray(x[np.arange(rows) % len(x)])


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "cpu_count": os.cpu_count()}
    try:
        info["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        info["nvidia_smi"] = f"unavailable: {exc}"
    for dist in ("nvforest-cu13", "treelite", "cupy-cuda13x", "torch", "onnxruntime", "tritonclient", "numpy",
                 "nvidia-pytriton"):
        try:
            info[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            info[dist] = None
    return info


def capture_features(out: Path) -> dict[str, int]:
    """The bundled capture's feature matrices per model name, as the scorer computes them."""
    import asyncio
    from collections import defaultdict

    from scorer.config import Settings
    from scorer.demo import bundled_capture, capture_records
    from scorer.inference.base import FloatMatrix, FloatVector, InferenceBackend, ModelRef
    from scorer.pipeline.scoring import BatchScorer
    from scorer.service.build import build_runtimes, load_rules

    seen: dict[str, list[FloatMatrix]] = defaultdict(list)

    class Recorder(InferenceBackend):  # keeps the rows and scores nothing
        name = "recorder"

        async def start(self) -> None: ...
        async def close(self) -> None: ...
        async def ready(self, model: ModelRef) -> bool:
            return True

        async def infer(self, model: ModelRef, features: FloatMatrix) -> FloatVector:
            seen[model.name].append(features.copy())
            return np.zeros(len(features), np.float32)

    scorer = BatchScorer(build_runtimes(Settings(), rules=load_rules(Settings())), Recorder())
    records = list(capture_records(bundled_capture()))
    for i in range(0, len(records), 512):
        asyncio.run(scorer.score(records[i:i + 512]))
    matrices = {name: np.concatenate(parts) for name, parts in seen.items()}
    np.savez_compressed(out, **matrices)
    return {name: len(m) for name, m in matrices.items()}
