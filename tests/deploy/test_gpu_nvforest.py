"""nvForest on a real GPU: the artefact, the engine and the served model equal ONNX Runtime.

These need CUDA and nvForest (the device machine, with the stack deploy/gpu/bench.sh
unpacks); elsewhere they skip as opt-in ("runs only with ..."). Their CPU counterparts,
which CI runs, are in tests/deploy/test_gpu.py (same model.py, same checkpoints, Treelite's
CPU predictor) and tests/lifecycle/test_tree_export.py.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deploy.gpu import forest_scorer
from scorer.inference.triton_config import SMALL_REQUEST_ROWS
from tests.deploy.test_gpu import MODELS, _ort, _rows, _version
from tests.support.gpu import gpu_repository_server, infer_once


def _require_cuda() -> None:
    if importlib.util.find_spec("nvforest") is None or importlib.util.find_spec("cupy") is None:
        pytest.skip("runs only with nvForest and CuPy installed (the GPU host; see deploy/gpu/bench.sh)")
    import cupy

    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError:
        n = 0
    if n == 0:
        pytest.skip("runs only with a CUDA GPU")


@pytest.fixture(scope="module")
def nvforest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """deploy/gpu's repository with nvForest on the GPU; marks its tests gpu, triton."""
    _require_cuda()
    with gpu_repository_server(tmp_path_factory.mktemp("triton-nvforest"), ["nvforest", "routed"],
                               repository=Path(_version(MODELS[0])).parents[1], max_batch=65536,
                               gpu_instances=1, timeout_s=300) as url:
        yield url


@pytest.mark.parametrize("model", MODELS)
def test_nvforest_on_gpu_equals_onnxruntime(model: str) -> None:
    _require_cuda()
    import cupy

    parts = [_rows(model, n, seed) for seed, n in enumerate((1, 37, 5000))]
    want = _ort(model, np.concatenate(parts))
    scorer = forest_scorer.ForestScorer(_version(model), "nvforest")
    for given in (parts, [cupy.asarray(p) for p in parts]):  # host rows, and rows already on the GPU
        got: list[Any] = scorer.score(given)
        assert [g.shape for g in got] == [(1, 2), (37, 2), (5000, 2)]
        assert np.abs(np.concatenate([cupy.asnumpy(g) for g in got]) - want).max() < 1e-5


@pytest.mark.parametrize("model", MODELS)
def test_nvforest_cpu_mode_equals_onnxruntime(model: str) -> None:
    _require_cuda()  # nvForest's CPU mode also runs without a GPU, but CI does not install nvForest
    x = _rows(model, 300, seed=11)
    got = forest_scorer.ForestScorer(_version(model), "nvforest-cpu").score([x])[0]
    assert np.abs(got - _ort(model, x)).max() < 1e-5


@pytest.mark.parametrize("transport", ["grpc", "shm", "cudashm"])
def test_served_nvforest_equals_onnxruntime(nvforest_server: str, transport: str) -> None:
    for model in MODELS:
        x = _rows(model, 4096, seed=3)
        got = infer_once(nvforest_server, f"{model}_nvforest", transport, x, "nvf")
        assert got.shape == (4096, 2)
        assert np.abs(got - _ort(model, x)).max() < 1e-5


@pytest.mark.parametrize("transport", ["grpc", "shm", "cudashm"])
def test_router_sends_large_and_gpu_resident_requests_to_nvforest(nvforest_server: str, transport: str) -> None:
    """The GPU host's production name: small requests scored by the C++ Treelite backend on
    the CPU, large ones (and any whose rows are in CUDA memory) forwarded to nvForest."""
    import tritonclient.grpc as grpcclient

    stats = grpcclient.InferenceServerClient(nvforest_server)

    def gpu_requests(model: str) -> int:
        s = stats.get_inference_statistics(f"{model}_nvforest", as_json=True)["model_stats"][0]
        return int(s["inference_stats"]["success"].get("count", 0))

    for model in MODELS:
        for rows in (1, SMALL_REQUEST_ROWS - 1, SMALL_REQUEST_ROWS, 8192):
            x = _rows(model, rows, seed=rows)
            before = gpu_requests(model)
            got = infer_once(nvforest_server, model, transport, x, f"rt{rows}")
            assert np.abs(got - _ort(model, x)).max() < 1e-5
            on_gpu = transport == "cudashm" or rows >= SMALL_REQUEST_ROWS
            assert gpu_requests(model) == before + on_gpu, (model, rows)
