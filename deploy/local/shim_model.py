"""Triton python-backend model: one version's ``model.onnx`` served with onnxruntime.

deploy/local/triton.py copies this file as ``model.py`` into every version of the shim
repository (the local tritonserver has only the python backend). It runs inside the
backend's stub process, on the venv's interpreter; the config gives the tensor names and
``onnx_intra_op_threads``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils  # provided by the python backend stub


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        opts = ort.SessionOptions()
        # One instance per CPU model; don't let onnxruntime start a thread per core.
        opts.intra_op_num_threads = int(params.get("onnx_intra_op_threads", "1"))
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        self.input: str = config["input"][0]["name"]
        self.outputs: list[str] = [o["name"] for o in config["output"]]

    def execute(self, requests: list[Any]) -> list[Any]:
        # Dynamic batching hands over several requests at once: score them in one run.
        arrays = [pb_utils.get_input_tensor_by_name(r, self.input).as_numpy() for r in requests]
        try:
            batch = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
            results = self.session.run(self.outputs, {self.input: batch})
        except Exception as exc:  # a bad batch fails its requests, not the instance
            error = pb_utils.TritonError(f"onnxruntime: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        bounds = np.cumsum([len(a) for a in arrays])[:-1]
        parts = [np.split(result, bounds) for result in results]  # per output, per request
        tensors = [
            [pb_utils.Tensor(name, np.ascontiguousarray(p)) for p in per_request]
            for name, per_request in zip(self.outputs, parts, strict=True)
        ]
        return [pb_utils.InferenceResponse(list(ts)) for ts in zip(*tensors, strict=True)]
