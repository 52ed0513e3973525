"""deploy/gpu (the GPU Triton model repository and its client bench), on the CPU.

The torch engine's CUDA graphs need a GPU (docs/gpu-serving.md has the H100 run); here the
same TreeScorer runs its CPU engines (numpy, onnxruntime, torch eager when torch is
installed) and the generated repository is served by the real local tritonserver.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from deploy.gpu import client_bench
from deploy.gpu import launch as deploy_gpu
from deploy.local import triton as local_triton
from scorer.inference.trees import load_tables
from tests.support import markers
from tests.support.paths import MODEL_REPOSITORY
from tests.support.triton import free_port

MODELS = ("netflow_classifier", "edr_classifier", "siem_classifier")
tree_scorer = client_bench._tree_scorer()


def _onnx(model: str) -> Path:
    return MODEL_REPOSITORY / model / "1" / "model.onnx"


def _rows(model: str, n: int, seed: int) -> Any:
    """Random rows spread over the model's own split thresholds, so every branch is taken."""
    tables = load_tables(_onnx(model))
    width = tree_scorer.n_features(_onnx(model))
    rng = np.random.default_rng(seed)
    thresholds = tables.threshold[tables.left != np.arange(tables.left.shape[1])]
    return rng.choice(thresholds, size=(n, width)).astype(np.float32) + rng.normal(0, 1e-3, (n, width)).astype(
        np.float32)


def _ort(model: str, x: Any) -> Any:
    return ort.InferenceSession(str(_onnx(model))).run(["probabilities"], {"features": x})[0]


def test_stats_percentiles_and_rate() -> None:
    s = client_bench.stats([0.001 * i for i in range(1, 101)], rows_per_request=10, wall_s=2.0)
    assert s["requests"] == 100
    assert s["p50_us"] == pytest.approx(50_500.0)
    assert s["p99_us"] == pytest.approx(99_010.0)
    assert s["rows_per_s"] == 500.0  # 100 requests x 10 rows over 2 s


def test_buckets_and_split() -> None:
    assert tree_scorer.buckets(65536)[-1] == 65536 and len(tree_scorer.buckets(65536)) == 17
    assert tree_scorer.buckets(100)[-1] == 128
    assert tree_scorer.bucket_for(65, [1, 64, 128]) == 128
    with pytest.raises(ValueError):
        tree_scorer.bucket_for(129, [1, 64, 128])
    parts = tree_scorer.split_rows(np.arange(10), [np.zeros(3), np.zeros(0), np.zeros(7)])
    assert [p.tolist() for p in parts] == [[0, 1, 2], [], [3, 4, 5, 6, 7, 8, 9]]


@pytest.mark.parametrize("model", MODELS)
def test_engines_equal_onnxruntime(model: str) -> None:
    engines = ["numpy", "onnxruntime"] + (["torch"] if importlib.util.find_spec("torch") else [])
    parts = [_rows(model, n, seed) for seed, n in enumerate((1, 37, 300))]
    want = _ort(model, np.concatenate(parts))
    for engine in engines:
        got = tree_scorer.TreeScorer(_onnx(model), engine, max_batch=512).score(parts)
        assert [len(g) for g in got] == [1, 37, 300]
        assert np.abs(np.concatenate([np.asarray(g) for g in got]) - want).max() < 1e-5, engine


def test_measure_runs_every_transport_until_count() -> None:
    calls: list[int] = []
    lock = threading.Lock()

    class Fake:
        def infer(self, x: Any) -> Any:
            with lock:
                calls.append(len(x))
            return x

    s = client_bench.measure([Fake(), Fake()], np.zeros((8, 2), np.float32), duration_s=0.0, min_requests=5)  # type: ignore[list-item]
    assert s["requests"] == 10 and len(calls) == 10 + 2 * 3  # 3 warm-ups per transport
    assert s["rows_per_s"] > 0


def test_gpu_config_keeps_production_contract() -> None:
    production = (MODEL_REPOSITORY / "netflow_classifier" / "config.pbtxt").read_text()
    cfg = text_format.Parse(deploy_gpu.engine_config(production, "torch", max_batch=65536, gpu_instances=2,
                                                     cpu_threads=4), mc.ModelConfig())
    prod = text_format.Parse(production, mc.ModelConfig())
    assert cfg.name == "netflow_classifier_torch" and cfg.backend == "python"
    assert cfg.input == prod.input and cfg.output == prod.output
    assert cfg.dynamic_batching == prod.dynamic_batching and cfg.version_policy == prod.version_policy
    assert cfg.max_batch_size == 65536
    assert [(g.kind, g.count) for g in cfg.instance_group] == [(mc.ModelInstanceGroup.KIND_GPU, 2)]
    assert cfg.parameters["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value == "no"
    cpu = text_format.Parse(deploy_gpu.engine_config(production, "onnxruntime", max_batch=65536, gpu_instances=2,
                                                     cpu_threads=4), mc.ModelConfig())
    assert [g.kind for g in cpu.instance_group] == [mc.ModelInstanceGroup.KIND_CPU]
    assert cpu.parameters["onnx_intra_op_threads"].string_value == "4"


@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """deploy/gpu's repository on a tritonserver (its CPU engines here); marks its tests gpu, triton."""
    markers.require("triton", "the GPU model repository's tritonserver started")
    workdir = tmp_path_factory.mktemp("triton-gpu")
    grpc_port = free_port()
    try:
        deploy_gpu.serve(MODEL_REPOSITORY, workdir, ["numpy", "onnxruntime"], max_batch=4096, cpu_threads=1,
                         grpc_port=grpc_port, http_port=free_port(), metrics_port=free_port(), timeout_s=120)
    except SystemExit as exc:  # the launcher exits on failure; show the server's log
        log = workdir / "tritonserver.log"
        pytest.fail(f"tritonserver failed: {exc}\n{log.read_text()[-3000:] if log.is_file() else ''}")
    try:
        yield f"127.0.0.1:{grpc_port}"
    finally:
        local_triton.stop(workdir)


@pytest.mark.parametrize("engine", ["numpy", "onnxruntime"])
@pytest.mark.parametrize("transport", ["grpc", "shm"])
def test_served_model_equals_onnxruntime(gpu_server: str, engine: str, transport: str) -> None:
    for model in MODELS:
        x = _rows(model, 700, seed=7)
        t = client_bench.Transport(gpu_server, f"{model}_{engine}", transport, len(x), x.shape[1], f"test{engine}")
        try:
            got = t.infer(x)
        finally:
            t.close()
        assert got.shape == (700, 2)
        assert np.abs(got - _ort(model, x)).max() < 1e-5


def test_bench_run_writes_report(gpu_server: str, tmp_path: Path) -> None:
    feats = tmp_path / "feats.npz"
    np.savez(feats, netflow_classifier=_rows("netflow_classifier", 50, seed=3))
    out = tmp_path / "report.json"
    client_bench.main(["run", "--url", gpu_server, "--features", str(feats), "--engines", "numpy,onnxruntime",
                     "--transports", "grpc,shm", "--concurrency", "1,2", "--batches", "1,64",
                     "--duration", "0.05", "--min-requests", "3", "--out", str(out)])
    import json

    rows = json.loads(out.read_text())["server"]
    assert len(rows) == 2 * 2 * 2 + 1 * 2 * 2  # numpy: 2 transports; onnxruntime: grpc only
    assert all("error" not in r and r["max_abs_diff_vs_ort"] < 1e-5 and r["requests"] >= 3 for r in rows)


def test_perf_analyzer_csv_is_read() -> None:
    from deploy.gpu.perf_analyzer import parse_csv

    text = ("Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,"
            "Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency\n"
            "4,175518,2,332,306,18,567,228,0,1058,2736,3890,5800\n")
    row = parse_csv(text)
    assert row["rows_per_s"] == 175518 and row["p50_us"] == 1058 and row["p99_us"] == 5800
    assert row["server_compute_infer_us"] == 567 and row["network_us"] == 332
