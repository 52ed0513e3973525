"""scorer.inference.triton_config: the shipped config.pbtxt files are exactly what it renders,
every variant reads back as the message it printed, and pinning or reading a model's configs
keeps every other field."""

from __future__ import annotations

from pathlib import Path

import pytest
from tritonclient.grpc import model_config_pb2 as mc

from scorer.events import EventKind
from scorer.inference import triton_config as tc
from scorer.inference.repository import load_version
from tests.support.paths import MODEL_REPOSITORY


@pytest.mark.parametrize("kind", list(EventKind))
def test_the_shipped_configs_are_the_rendered_ones_byte_for_byte(kind: EventKind) -> None:
    name = f"{kind}_classifier"
    width = len(load_version(MODEL_REPOSITORY, name).card.feature_names)
    assert (MODEL_REPOSITORY / name / tc.CONFIG).read_text() == tc.production_config(name, width)
    assert (MODEL_REPOSITORY / name / tc.CPU_CONFIG).read_text() == tc.cpu_config(name, width)
    assert tc.input_width(MODEL_REPOSITORY / name) == width


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_variant_reads_back_as_printed(kind: EventKind) -> None:
    production = tc.read(MODEL_REPOSITORY / f"{kind}_classifier" / tc.CONFIG)
    shim = tc.python_backend(production)
    engine = tc.python_backend(production)
    tc.set_instances(engine, "gpu", 2, gpus=[0])
    engine.parameters["scorer_engine"].string_value = "torch"
    for config in (production, shim, engine):
        assert tc.parse(tc.to_compact_text(config)) == config
        assert tc.parse(tc.to_text(config)) == config
    assert (shim.backend, [g.kind for g in shim.instance_group]) == ("python", [mc.ModelInstanceGroup.KIND_CPU])
    assert shim.parameters["onnx_intra_op_threads"].string_value == "1"
    assert (shim.input, shim.output, shim.dynamic_batching) == (production.input, production.output,
                                                               production.dynamic_batching)
    assert production.backend == "onnxruntime", "the variants are copies"


def test_pinning_rewrites_every_config_of_the_model_and_keeps_the_rest(tmp_path: Path) -> None:
    model = tmp_path / "netflow_classifier"
    model.mkdir()
    assert tc.input_width(model) is None and tc.pin_versions(model, [1]) == []
    (model / "configs").mkdir()
    hand_set = 'parameters { key: "k" value { string_value: "v" } }\n'
    (model / tc.CONFIG).write_text(tc.production_config(model.name, 28) + hand_set)
    assert tc.pin_versions(model, []) == [], "nothing named: nothing written"
    assert tc.pin_versions(model, [3, 1, 3]) == [model / tc.CONFIG], "only the configs that exist"
    (model / tc.CPU_CONFIG).write_text(tc.cpu_config(model.name, 28))
    assert tc.pin_versions(model, [2, 1]) == [model / tc.CONFIG, model / tc.CPU_CONFIG]
    for path in tc.config_files(model):
        config = tc.read(path)
        assert list(config.version_policy.specific.versions) == [1, 2] and not config.version_policy.HasField("latest")
        assert list(config.input[0].dims) == [28] and config.dynamic_batching.max_queue_delay_microseconds == 200
    assert tc.read(model / tc.CONFIG).parameters["k"].string_value == "v", "a hand-set field survives"
    assert tc.input_width(model) == 28
