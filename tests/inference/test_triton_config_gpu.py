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


@pytest.mark.parametrize("kind", list(EventKind))
def test_gpu_host_router_keeps_the_production_name_and_contract(kind: EventKind) -> None:
    """The GPU host's production model: the C++ Treelite backend on CPU instances, under the
    production name, forwarding requests of SMALL_REQUEST_ROWS rows and more to nvForest."""
    production = tc.read(MODEL_REPOSITORY / f"{kind}_classifier" / tc.CONFIG)
    router = tc.treelite_cpu_model(production, library="/lib/libtreelite.so", instances=4,
                                   large_model=f"{production.name}_nvforest")
    assert (router.name, router.backend, router.platform) == (production.name, tc.CPU_BACKEND, "")
    assert (router.input, router.output) == (production.input, production.output)
    assert router.version_policy == production.version_policy and router.max_batch_size == production.max_batch_size
    assert [(g.kind, g.count) for g in router.instance_group] == [(mc.ModelInstanceGroup.KIND_CPU, 4)]
    assert not router.HasField("dynamic_batching")  # each request straight to an instance (CPU_MODEL_BATCHING)
    batched = tc.treelite_cpu_model(production, library="/lib/libtreelite.so", batching=True)
    assert batched.HasField("dynamic_batching") and batched.dynamic_batching.max_queue_delay_microseconds == 0
    params = {k: v.string_value for k, v in router.parameters.items()}
    assert params == {"treelite_library": "/lib/libtreelite.so", "gtil_threads": str(tc.CPU_MODEL_THREADS),
                      "large_request_model": f"{production.name}_nvforest",
                      "large_request_rows": str(tc.SMALL_REQUEST_ROWS)}
    alone = tc.treelite_cpu_model(production, library="/lib/libtreelite.so")
    assert "large_request_model" not in alone.parameters  # scores every request itself
    assert tc.parse(tc.to_text(router)) == router
