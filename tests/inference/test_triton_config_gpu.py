"""scorer.inference.triton_config.nvforest_model: the GPU host's config of each shipped model.

What a GPU host serves must keep the production contract (tensors, batching, versions)
and change only where and how it runs: nvForest in a python-backend model on GPU instances,
with inputs a client placed on the GPU left there.
"""

from __future__ import annotations

import pytest
from tritonclient.grpc import model_config_pb2 as mc

from scorer.events import EventKind
from scorer.inference import triton_config as tc
from tests.support.paths import MODEL_REPOSITORY


@pytest.mark.parametrize("kind", list(EventKind))
def test_gpu_host_config_keeps_the_production_contract(kind: EventKind) -> None:
    production = tc.read(MODEL_REPOSITORY / f"{kind}_classifier" / tc.CONFIG)
    gpu = tc.nvforest_model(production, gpu_instances=3, gpus=[1])
    assert (gpu.name, gpu.backend, gpu.platform) == (production.name, "python", "")
    assert (gpu.input, gpu.output) == (production.input, production.output)
    assert gpu.dynamic_batching == production.dynamic_batching and gpu.version_policy == production.version_policy
    assert gpu.max_batch_size == production.max_batch_size
    assert [(g.kind, g.count, list(g.gpus)) for g in gpu.instance_group] == [(mc.ModelInstanceGroup.KIND_GPU, 3, [1])]
    assert gpu.parameters["scorer_engine"].string_value == tc.GPU_ENGINE == "nvforest"
    assert gpu.parameters["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value == "no"
    assert tc.parse(tc.to_text(gpu)) == gpu
    # The production config itself is untouched: a CPU host still serves ONNX Runtime.
    assert production.backend == "onnxruntime" and "scorer_engine" not in production.parameters
