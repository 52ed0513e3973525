"""deploy/gpu's compiled trees (tl2cgen): the C++ backend's scorer of small requests, on the CPU.

Each version's model.tl compiled by this host's C compiler (deploy/gpu/compiled_model.py)
and scored through the backend's own C++ (treelite_backend/compiled_model.cc, driven by
predict_bench.cc) gives ONNX Runtime's scores and alert decisions on the capture's real rows;
on a real tritonserver the production name answers small requests with it (each response
names its scorer), and a library that disagrees with the checkpoint is refused at load.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from deploy.gpu import bench_common, compiled_bench, compiled_model
from deploy.gpu import launch as deploy_gpu
from deploy.local import triton as local_triton
from tests.support.gpu import gpu_repository_server
from tests.support.kafka import free_ports
from tests.support.paths import MODEL_REPOSITORY

MODELS = ("netflow_classifier", "edr_classifier", "siem_classifier")
SMALL = 64  # the router's threshold here: from 64 rows it forwards to <model>_treelite


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The bundled capture's feature rows per model, as the scorer computes them."""
    out = tmp_path_factory.mktemp("capture") / "feats.npz"
    bench_common.capture_features(out)
    return np.load(out)


@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The router and the C++ backend alone, compiled trees on (the default), GTIL's
    reference predictor as the large-request model; marks its tests gpu, triton."""
    with gpu_repository_server(tmp_path_factory.mktemp("triton-compiled"), [bench_common.ROUTED, deploy_gpu.CPP,
                               "treelite"], max_batch=4096, large_engine="treelite", small_request_rows=SMALL) as url:
        yield url


def _ort(model: str, x: Any) -> Any:
    session = ort.InferenceSession(str(MODEL_REPOSITORY / model / "1" / "model.onnx"))
    return session.run(["probabilities"], {"features": x})[0]


def _infer(url: str, model: str, x: Any) -> tuple[Any, str]:
    """Scores of ``x`` from ``model``, and what the server says scored them."""
    import tritonclient.grpc as grpcclient

    inp = grpcclient.InferInput("features", list(x.shape), "FP32")
    inp.set_data_from_numpy(np.ascontiguousarray(x, np.float32))
    result = grpcclient.InferenceServerClient(url).infer(model, [inp])
    return result.as_numpy("probabilities"), result.get_response().parameters["scored_by"].string_param


@pytest.mark.parametrize("model", MODELS)
def test_compiled_trees_equal_onnxruntime_on_the_captures_rows(model: str, capture: Any, tmp_path: Path) -> None:
    harness = compiled_bench.build_harness(tmp_path)
    found = compiled_bench.bench_model(harness, MODEL_REPOSITORY / model / "1", capture[model], tmp_path,
                                       batches=[1, 16], calls=20, threads=1)
    compiled = found["vs_onnxruntime"]["compiled"]
    assert compiled["rows"] == len(capture[model]) > 1000
    assert compiled["max_abs_diff"] <= 1e-5 and compiled["decisions_differ"] == 0, found["vs_onnxruntime"]
    assert [t["batch"] for t in found["timings"]] == [1, 16]


def test_small_requests_are_answered_by_the_compiled_trees(gpu_server: str, capture: Any) -> None:
    """Below the router's threshold the compiled trees score (the production name and the
    C++ backend alone); from it the request is forwarded. Scores equal ONNX Runtime's."""
    for model in MODELS:
        x = capture[model]
        for rows, name, scorer in ((1, model, "compiled"), (SMALL - 1, model, "compiled"),
                                   (SMALL, model, f"{model}_treelite"),
                                   (1, bench_common.served_name(model, deploy_gpu.CPP), "compiled"),
                                   (300, bench_common.served_name(model, deploy_gpu.CPP), "compiled")):
            got, scored_by = _infer(gpu_server, name, x[:rows])
            assert scored_by == scorer, (name, rows)
            assert got.shape == (rows, 2) and np.abs(got - _ort(model, x[:rows])).max() <= 1e-5


def test_a_library_that_disagrees_with_its_checkpoint_is_refused(gpu_server: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiled library of other trees than the version's model.tl (one leaf moved) fails
    the backend's check against GTIL at load: the model is not served, and the server's log
    says why. (The good server beside it keeps serving.)"""
    import treelite

    tree = treelite.Model.deserialize(str(MODEL_REPOSITORY / "netflow_classifier" / "1" / "model.tl"))
    first = tree.get_tree_accessor(0)
    first.set_field("leaf_value", first.get_field("leaf_value") + np.float32(0.5))
    tree.serialize(str(tmp_path / "other.tl"))
    other = compiled_model.build(tmp_path / "other.tl", tmp_path / "cache")
    monkeypatch.setattr(compiled_model, "build", lambda checkpoint, cache=None, optimize="-O3": other)
    src = tmp_path / "src"
    shutil.copytree(MODEL_REPOSITORY / "netflow_classifier", src / "netflow_classifier")
    workdir = tmp_path / "server"
    try:
        with pytest.raises(SystemExit):
            grpc, http, metrics = free_ports(3)
            deploy_gpu.serve(src, workdir, [deploy_gpu.CPP], grpc_port=grpc, http_port=http,
                             metrics_port=metrics, timeout_s=60)
    finally:
        local_triton.stop(workdir)
    log = (workdir / local_triton.LOG).read_text()
    assert "compiled trees refused: check row" in log and "GTIL" in log
    assert _infer(gpu_server, "netflow_classifier", np.asarray(np.zeros((1, 28)), np.float32))[1] == "compiled"
