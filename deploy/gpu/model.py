"""Triton python-backend model: the shipped tree ensembles scored by deploy/gpu/tree_scorer.py.

deploy/gpu/launch.py copies this file into every version of the generated repository. The
config's parameters choose the engine (``torch`` on the GPU, ``onnxruntime`` / ``numpy`` on
the CPU) and say where the scorer checkout is (``scorer_root``).

Tensors cross the stub boundary through DLPack where numpy allows: the python backend stub of
the pytriton 0.7.0 server (Triton 24.10) was built for numpy 1; with numpy >= 2 (2.4 here,
2.5 on the GPU image) ``as_numpy()`` reads wrong values and ``Tensor(name, ndarray)`` sends
empty outputs, while with numpy 1.26 handing it a numpy DLPack capsule kills the stub. So:
torch tensors always through DLPack (no copy); numpy through DLPack on numpy 2, through
``as_numpy()`` / ``Tensor()`` on numpy 1. With
``FORCE_CPU_ONLY_INPUT_TENSORS: no`` an input a client placed in CUDA shared memory arrives
on the GPU; the scores then stay on the GPU and Triton copies them to the client's region.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by the python backend stub

INPUT, OUTPUT = "features", "probabilities"
# Which numpy <-> stub route works depends on numpy's major version (see the docstring).
NUMPY2 = int(np.__version__.split(".")[0]) >= 2


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.engine = params.get("scorer_engine", "torch")
        onnx_path = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        sys.path.append(str(Path(params["scorer_root"]) / "deploy" / "gpu"))  # appended: shadows nothing
        import tree_scorer

        self.scorer = tree_scorer.TreeScorer(
            onnx_path, self.engine, max_batch=int(config["max_batch_size"]),
            threads=int(params.get("onnx_intra_op_threads", "1")),
        )
        if self.engine == "torch":
            import torch

            self.torch = torch

    def _array(self, tensor: Any) -> Any:
        if self.engine == "torch":
            return self.torch.from_dlpack(tensor.to_dlpack())  # CPU or GPU, zero-copy
        return np.from_dlpack(tensor) if NUMPY2 else tensor.as_numpy()  # CPU: forced for these engines

    def execute(self, requests: list[Any]) -> list[Any]:
        # Dynamic batching hands over several requests at once: score them in one run.
        parts = [self._array(pb_utils.get_input_tensor_by_name(r, INPUT)) for r in requests]
        try:
            results = self.scorer.score(parts)
        except Exception as exc:  # a bad batch fails its requests, not the instance
            error = pb_utils.TritonError(f"{self.engine}: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        return [pb_utils.InferenceResponse([_tensor(r)]) for r in results]


def _tensor(array: Any) -> Any:
    if hasattr(array, "is_cuda"):  # torch, CPU or GPU: its DLPack capsule, no copy
        from torch.utils.dlpack import to_dlpack

        return pb_utils.Tensor.from_dlpack(OUTPUT, to_dlpack(array.contiguous()))
    array = np.ascontiguousarray(array)
    return pb_utils.Tensor.from_dlpack(OUTPUT, array) if NUMPY2 else pb_utils.Tensor(OUTPUT, array)
