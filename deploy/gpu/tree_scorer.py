"""The scoring engines behind the GPU Triton model (deploy/gpu/model.py) and its bench.

One ``score(parts)`` for three engines, so the server's python model and the in-process
limit in deploy/gpu/client_bench.py run the very same code:

- ``torch``: scorer/inference/trees.py's traversal on CUDA, one CUDA graph per power-of-two
  batch bucket (1, 2, 4 ... max_batch) captured at start, so a batch costs one launch plus
  its copies; without CUDA, torch eager on the CPU (how the tests run it).
- ``numpy``: the same traversal with numpy (CPU; the fallback where torch is absent).
- ``onnxruntime``: the production ONNX file on CPU, the CPU comparison.

``parts`` are the request tensors of one dynamic batch (numpy arrays or torch tensors, CPU or
CUDA); the result is one ``[rows, 2]`` probabilities array per part, numpy or torch on the
device the inputs came from. Column 1 is P(malicious), as the ONNX model's output.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

ENGINES = ("torch", "numpy", "onnxruntime")
ROOT = Path(__file__).resolve().parents[2]


def load_module(name: str, path: Path) -> ModuleType:
    """Import a file by path, once (registered first: dataclasses look their module up)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _trees() -> ModuleType:
    try:
        from scorer.inference import trees
    except ImportError:
        # The python backend's interpreter (the GPU image's torch venv) need not have what
        # the scorer package imports (msgspec): then the file alone, which needs only numpy.
        return load_module("scorer_inference_trees", ROOT / "scorer" / "inference" / "trees.py")
    return trees


def n_features(onnx_path: Path) -> int:
    """Width of the model's ``features`` input (the trees need not use the last columns)."""
    import onnx

    dims = onnx.load(str(onnx_path)).graph.input[0].type.tensor_type.shape.dim
    return int(dims[1].dim_value)


def buckets(max_batch: int) -> list[int]:
    """Powers of two up to and including the first one >= ``max_batch``."""
    out = [1]
    while out[-1] < max_batch:
        out.append(out[-1] * 2)
    return out


def bucket_for(rows: int, sizes: list[int]) -> int:
    for size in sizes:
        if size >= rows:
            return size
    raise ValueError(f"batch of {rows} rows exceeds the largest bucket {sizes[-1]}")


def split_rows(whole: Any, parts: list[Any]) -> list[Any]:
    """``whole``'s rows cut back into the parts' row counts (views, no copy)."""
    out, start = [], 0
    for part in parts:
        out.append(whole[start:start + len(part)])
        start += len(part)
    return out


class TreeScorer:
    def __init__(self, onnx_path: Path, engine: str, *, max_batch: int = 65536, threads: int = 1) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
        self.engine = engine
        self.max_batch = max_batch
        if engine == "onnxruntime":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
            return
        trees = _trees()
        self.predict = trees.predict
        tables = trees.load_tables(onnx_path)
        self.n_features = n_features(onnx_path)
        if engine == "numpy":
            self.tables = trees.as_arrays(tables)
            return
        import torch

        self.torch = torch
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.tables = trees.as_arrays(tables, to=lambda a: torch.as_tensor(a, device=self.device))
        self.graphs: dict[int, tuple[Any, Any, Any]] = {}
        if self.device.type == "cuda":
            self.stream = torch.cuda.Stream()
            for size in buckets(max_batch):
                self.graphs[size] = self._capture(size)

    @property
    def on_gpu(self) -> bool:
        return self.engine == "torch" and self.device.type == "cuda"

    def _probabilities(self, x: Any) -> Any:
        p = self.predict(self.tables, x, self.torch)
        return self.torch.stack([1.0 - p, p], 1)

    def _capture(self, size: int) -> tuple[Any, Any, Any]:
        torch = self.torch
        # Finite, in-range features for warm-up and capture; real rows are copied in later.
        static_x = torch.zeros((size, self.n_features), dtype=torch.float32, device=self.device)
        with torch.cuda.stream(self.stream):
            for _ in range(2):  # warm-up off the capture: allocator and kernels ready
                self._probabilities(static_x)
        self.stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            static_out = self._probabilities(static_x)
        return graph, static_x, static_out

    def score(self, parts: list[Any]) -> list[Any]:
        if self.engine == "onnxruntime":
            x = parts[0] if len(parts) == 1 else np.concatenate(parts)
            return split_rows(self.session.run(["probabilities"], {"features": x})[0], parts)
        if self.engine == "numpy":
            x = parts[0] if len(parts) == 1 else np.concatenate(parts)
            p = self.predict(self.tables, x, np).astype(np.float32)
            return split_rows(np.stack([1.0 - p, p], 1), parts)
        if not self.on_gpu:
            x = self.torch.cat([self.torch.as_tensor(p) for p in parts])
            return split_rows(self._probabilities(x), parts)
        return self._score_graph(parts)

    def _score_graph(self, parts: list[Any]) -> list[Any]:
        torch = self.torch
        rows = sum(len(p) for p in parts)
        graph, static_x, static_out = self.graphs[bucket_for(rows, list(self.graphs))]
        on_device = all(isinstance(p, torch.Tensor) and p.is_cuda for p in parts)
        with torch.cuda.stream(self.stream):
            start = 0
            for part in parts:  # each request straight into the graph's input: no concat
                static_x[start:start + len(part)].copy_(torch.as_tensor(part), non_blocking=True)
                start += len(part)
            graph.replay()  # rows past ``rows`` hold stale features; their scores are dropped
            if on_device:
                # A copy the caller owns: the next replay overwrites static_out.
                out = static_out[:rows].clone()
            else:
                out = torch.empty((rows, 2), dtype=torch.float32, pin_memory=True)
                out.copy_(static_out[:rows], non_blocking=True)
        self.stream.synchronize()
        return split_rows(out, parts)
