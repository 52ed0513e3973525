"""Triton python-backend model: the shipped tree ensembles scored by deploy/gpu/forest_scorer.py.

deploy/gpu/launch.py copies this file into every version of the generated repository, beside
links to that version's ``model.tl`` (Treelite checkpoint) and ``model.onnx``. The config's
parameters choose the engine (``nvforest`` on the GPU; ``treelite`` / ``onnxruntime`` /
``nvforest-cpu`` on the CPU) and say where the scorer checkout is (``scorer_root``).

Tensors cross the stub boundary through DLPack, in and out: with
``FORCE_CPU_ONLY_INPUT_TENSORS: no`` an input a client placed in CUDA shared memory arrives
on the GPU and nvForest reads it in place; the scores stay on the GPU and Triton copies them
to the client's region (or the gRPC response). Why DLPack and not ``as_numpy()``: the python
backend stub of the pytriton 0.7.0 server (Triton 24.10) was built for numpy 1; with
numpy >= 2 (2.5 on the GPU image) ``as_numpy()`` reads wrong values and ``Tensor(name,
ndarray)`` sends empty outputs; with numpy 1 a numpy DLPack capsule kills the stub, so numpy 1
keeps ``as_numpy()``; numpy 2's own capsule deleter prints a traceback per call, so CPU
outputs go through torch's DLPack where torch is installed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by the python backend stub

INPUT, OUTPUT = "features", "probabilities"
NUMPY2 = int(np.__version__.split(".")[0]) >= 2
try:
    import torch as TORCH
    from torch.utils.dlpack import to_dlpack
except ImportError:
    TORCH = None


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.engine = params.get("scorer_engine", "nvforest")
        version_dir = Path(args["model_repository"]) / args["model_version"]
        # The stub does not inherit the server's PYTHONPATH: where nvForest was unpacked (a
        # host without network, deploy/gpu/bench.sh) comes as a parameter. Appended: shadows nothing.
        extra = [p for p in params.get("python_path", "").split(":") if p]
        sys.path.extend([str(Path(params["scorer_root"]) / "deploy" / "gpu"), *extra])
        import forest_scorer

        chunk = params.get("nvforest_chunk_size", "")
        self.scorer = forest_scorer.ForestScorer(
            version_dir, self.engine, threads=int(params.get("onnx_intra_op_threads", "1")),
            layout=params.get("nvforest_layout", "depth_first"), chunk_size=int(chunk) if chunk else None,
        )

    def _array(self, tensor: Any) -> Any:
        if self.scorer.on_gpu:
            return _from_dlpack(tensor)  # CPU or GPU, zero copy; CuPy reads it on the GPU
        return np.from_dlpack(tensor) if NUMPY2 else tensor.as_numpy()

    def execute(self, requests: list[Any]) -> list[Any]:
        # Dynamic batching hands over several requests at once: score them in one call.
        parts = [self._array(pb_utils.get_input_tensor_by_name(r, INPUT)) for r in requests]
        try:
            results = self.scorer.score(parts)
        except Exception as exc:  # a bad batch fails its requests, not the instance
            error = pb_utils.TritonError(f"{self.engine}: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        return [pb_utils.InferenceResponse([_tensor(r)]) for r in results]


def _from_dlpack(tensor: Any) -> Any:
    if TORCH is not None:
        return TORCH.from_dlpack(tensor.to_dlpack())
    import cupy

    return cupy.from_dlpack(tensor.to_dlpack())


def _tensor(array: Any) -> Any:
    if hasattr(array, "__cuda_array_interface__"):  # CuPy on the GPU: hand the device buffer over
        array = array if array.flags.c_contiguous else array.copy()
        if TORCH is not None:
            return pb_utils.Tensor.from_dlpack(OUTPUT, to_dlpack(TORCH.from_dlpack(array)))
        return pb_utils.Tensor.from_dlpack(OUTPUT, array.toDlpack())
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not NUMPY2:
        return pb_utils.Tensor(OUTPUT, array)
    if TORCH is None:
        # Works, but numpy 2's capsule deleter prints a traceback per call (see the docstring).
        return pb_utils.Tensor.from_dlpack(OUTPUT, array)
    return pb_utils.Tensor.from_dlpack(OUTPUT, to_dlpack(TORCH.from_numpy(array)))
