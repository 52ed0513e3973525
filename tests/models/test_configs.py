"""The production and CPU config.pbtxt of every shipped model are valid Triton ModelConfigs
that match the model's card and ONNX graph, and ask for no accelerator the graph cannot use."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from scorer.events import EventKind
from scorer.inference.base import INPUT_NAME, OUTPUT_NAME
from scorer.inference.repository import load_version
from scorer.inference.triton_config import production_config

REPO = Path(__file__).parents[2] / "model_repository"
CONFIGS = {"production": ("config.pbtxt", mc.ModelInstanceGroup.KIND_GPU),
           "cpu": ("configs/cpu.pbtxt", mc.ModelInstanceGroup.KIND_CPU)}


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_value or d.dim_param for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("variant", list(CONFIGS))
@pytest.mark.parametrize("kind", list(EventKind))
def test_config_matches_card_and_onnx(kind: EventKind, variant: str) -> None:
    name = f"{kind}_classifier"
    path, instance_kind = CONFIGS[variant]
    config = text_format.Parse((REPO / name / path).read_text(), mc.ModelConfig())
    version = load_version(REPO, name)
    graph = onnx.load(version.onnx_path).graph
    width = len(version.card.feature_names)

    assert config.name == name and config.backend == "onnxruntime" and not config.platform
    assert config.HasField("dynamic_batching") and config.max_batch_size > 0
    assert [g.kind for g in config.instance_group] == [instance_kind]
    (inp,) = config.input
    (out,) = config.output
    assert (inp.name, inp.data_type, list(inp.dims)) == (INPUT_NAME, mc.TYPE_FP32, [width])
    assert (out.name, out.data_type, list(out.dims)) == (OUTPUT_NAME, mc.TYPE_FP32, [2])
    onnx_in = {i.name: _dims(i) for i in graph.input}
    onnx_out = {o.name: _dims(o) for o in graph.output}
    # ONNX keeps the batch axis Triton adds from max_batch_size.
    assert onnx_in[INPUT_NAME][1:] == [width] and onnx_out[OUTPUT_NAME][1:] == [2]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    if int(version.version) not in config.version_policy.specific.versions:  # (ints in the config)
        assert config.version_policy.latest.num_versions >= 1


@pytest.mark.parametrize("kind", list(EventKind))
def test_no_gpu_accelerator_for_graphs_of_ml_operators(kind: EventKind) -> None:
    # TensorRT does not parse ai.onnx.ml operators and ORT's CUDA EP has no kernel for them:
    # a graph made only of them runs on ORT's CPU EP, so an accelerator entry (TensorRT FP16)
    # would promise speed and a precision that never apply.
    name = f"{kind}_classifier"
    graph = onnx.load(load_version(REPO, name).onnx_path).graph
    assert {n.domain for n in graph.node} == {"ai.onnx.ml"}
    config = text_format.Parse((REPO / name / "config.pbtxt").read_text(), mc.ModelConfig())
    assert not config.optimization.execution_accelerators.gpu_execution_accelerator
    written = text_format.Parse(production_config(name, 3), mc.ModelConfig())
    assert not written.HasField("optimization") and list(written.input[0].dims) == [3]
