"""Triton python-backend model: the shipped tree ensembles scored by deploy/gpu/tree_scorer.py.

deploy/gpu/launch.py copies this file into every version of the generated repository. The
config's parameters choose the engine (``torch`` on the GPU, ``onnxruntime`` / ``numpy`` on
the CPU) and say where the scorer checkout is (``scorer_root``).

Tensors cross the stub boundary through DLPack where numpy allows: the python backend stub of
the pytriton 0.7.0 server (Triton 24.10) was built for numpy 1; with numpy >= 2 (2.4 here,
2.5 on the GPU image) ``as_numpy()`` reads wrong values and ``Tensor(name, ndarray)`` sends
empty outputs, while with numpy 1.26 handing it a numpy DLPack capsule kills the stub, and
with numpy 2 the stub's use of numpy's capsule works but makes its deleter print a
traceback per call. So: inputs through DLPack on numpy 2, ``as_numpy()`` on numpy 1; outputs
as torch DLPack capsules where torch is installed (no copy), else ``Tensor()`` on numpy 1 and
numpy's DLPack on numpy 2. With
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
try:
    import torch as TORCH
    from torch.utils.dlpack import to_dlpack
except ImportError:
    TORCH = None


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

    def _array(self, tensor: Any) -> Any:
        if self.engine == "torch":
            return TORCH.from_dlpack(tensor.to_dlpack())  # CPU or GPU, zero-copy
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
    if not hasattr(array, "is_cuda"):  # numpy
        array = np.ascontiguousarray(array)
        if not NUMPY2:
            return pb_utils.Tensor(OUTPUT, array)
        if TORCH is None:
            # Works, but numpy 2's capsule deleter prints a traceback per call (see the docstring).
            return pb_utils.Tensor.from_dlpack(OUTPUT, array)
        array = TORCH.from_numpy(array)  # a view: torch's capsule goes through cleanly
    return pb_utils.Tensor.from_dlpack(OUTPUT, to_dlpack(array.contiguous()))
