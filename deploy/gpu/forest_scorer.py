"""The scoring engines behind the GPU Triton model (deploy/gpu/model.py) and its benches.

One ``score(parts)`` for every engine, so the server's python model and the in-process
limit in deploy/gpu/inprocess_bench.py run the very same code:

- ``nvforest``: nvForest (the forest-inference engine that succeeded cuML's FIL) on the
  GPU, from the version's Treelite checkpoint ``model.tl`` (scorer/lifecycle/tree_export.py).
  Parts already on the GPU (CUDA shared memory, or DLPack from the server) are read in
  place; host parts are copied once.
- ``nvforest-cpu``: the same artefact in nvForest's CPU mode (where nvForest imports).
- ``treelite``: the same artefact in Treelite's reference predictor (GTIL), CPU. CI has
  neither a GPU nor nvForest: this engine lets the served model, its config and its
  checkpoint be tested there with the code path that model.py takes on a GPU host.
- ``onnxruntime``: the production ``model.onnx`` on the CPU, the comparison.

``parts`` are the request tensors of one dynamic batch (numpy, torch or CuPy arrays, CPU
or CUDA); the result is one ``[rows, 2]`` float32 array per part: CuPy on the GPU for
``nvforest``, numpy otherwise. Column 1 is P(malicious), as the ONNX model's output.

This file imports only numpy at module level: the python backend's stub runs it under
the GPU image's interpreter, which has no scorer dependencies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

ENGINES = ("nvforest", "nvforest-cpu", "treelite", "onnxruntime")
ARTEFACT = "model.tl"  # scorer.lifecycle.tree_export.ARTEFACT (not imported: see above)
ONNX = "model.onnx"


def artefact(version_dir: Path, engine: str) -> Path:
    """The file ``engine`` loads from a model version directory."""
    return version_dir / (ONNX if engine == "onnxruntime" else ARTEFACT)


def split_rows(whole: Any, parts: list[Any]) -> list[Any]:
    """``whole``'s rows cut back into the parts' row counts (views, no copy)."""
    out, start = [], 0
    for part in parts:
        out.append(whole[start:start + len(part)])
        start += len(part)
    return out


def two_columns(p1: Any, xp: Any) -> Any:
    """[rows, 2] = (1 - p, p) from P(malicious) [rows] or [rows, 1]; kept if already 2 wide."""
    p1 = p1.reshape(len(p1), -1)
    if p1.shape[1] == 2:
        return p1
    p1 = p1[:, 0]
    return xp.stack([1.0 - p1, p1], axis=1).astype(xp.float32)


class ForestScorer:
    def __init__(self, version_dir: Path, engine: str, *, threads: int = 1, layout: str = "depth_first",
                 chunk_size: int | None = None) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
        self.engine = engine
        path = artefact(version_dir, engine)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (python -m scorer.lifecycle.tree_export {version_dir})")
        if engine == "onnxruntime":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            return
        if engine == "treelite":
            import treelite

            self.treelite = treelite
            self.model = treelite.Model.deserialize(str(path))
            self.threads = threads
            return
        import nvforest

        device = "gpu" if engine == "nvforest" else "cpu"
        self.forest = nvforest.load_model(path, model_type="treelite_checkpoint", device=device,
                                          layout=layout, default_chunk_size=chunk_size, precision="single")
        if device == "gpu":
            import cupy

            self.cp = cupy

    @property
    def on_gpu(self) -> bool:
        return self.engine == "nvforest"

    def score(self, parts: list[Any]) -> list[Any]:
        if self.on_gpu:
            return self._score_gpu(parts)
        x = np.concatenate([np.asarray(p, np.float32) for p in parts]) if len(parts) > 1 else np.asarray(
            parts[0], np.float32)
        x = np.ascontiguousarray(x)
        if self.engine == "onnxruntime":
            probs = self.session.run(["probabilities"], {"features": x})[0]
        elif self.engine == "treelite":
            import treelite.gtil

            probs = two_columns(np.asarray(treelite.gtil.predict(self.model, x, nthread=self.threads)), np)
        else:
            probs = two_columns(np.asarray(self.forest.predict_proba(x)), np)
        return split_rows(np.asarray(probs, np.float32), parts)

    def _score_gpu(self, parts: list[Any]) -> list[Any]:
        cp = self.cp
        # CUDA parts through __cuda_array_interface__ / DLPack (no copy); host parts copied once.
        on_device = [cp.asarray(p) if _is_cuda(p) else cp.asarray(np.asarray(p)) for p in parts]
        x = on_device[0] if len(on_device) == 1 else cp.concatenate(on_device)
        p = self.forest.predict_proba(cp.ascontiguousarray(x, dtype=cp.float32))
        if p.ndim == 2 and p.shape[1] == 2:
            return split_rows(p, parts)
        probs = cp.empty((len(p), 2), cp.float32)
        _two_columns_kernel()(p.reshape(-1), probs)  # one launch instead of three
        # nvForest synchronized its own stream; this kernel ran on CuPy's: wait for it too.
        cp.cuda.get_current_stream().synchronize()
        return split_rows(probs, parts)


_KERNEL: list[Any] = []


def _two_columns_kernel() -> Any:
    """(1 - p, p) per row in one elementwise launch (CuPy compiles it once per process)."""
    if not _KERNEL:
        import cupy

        _KERNEL.append(cupy.ElementwiseKernel("float32 p", "raw float32 out",
                                              "out[2 * i] = 1.0f - p; out[2 * i + 1] = p;", "scorer_two_columns"))
    return _KERNEL[0]


def _is_cuda(array: Any) -> bool:
    if hasattr(array, "is_cuda"):  # torch
        return bool(array.is_cuda)
    return hasattr(array, "__cuda_array_interface__")
