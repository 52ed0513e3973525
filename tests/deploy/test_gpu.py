"""deploy/gpu (the GPU Triton model repository, its engines and benches), on the CPU.

nvForest needs a GPU here (tests/deploy/test_gpu_nvforest.py runs on one; docs/gpu-serving.md
has the H200 run). CI serves the same generated repository, model.py and Treelite
checkpoints with the CPU engines of deploy/gpu/forest_scorer.py (Treelite's reference
predictor, ONNX Runtime) on the real local tritonserver.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from deploy.gpu import bench_common, client_bench, forest_scorer, inprocess_bench, scorers_bench, transports
from deploy.gpu import launch as deploy_gpu
from tests.support.gpu import gpu_repository_server, infer_once
from tests.support.paths import MODEL_REPOSITORY

MODELS = ("netflow_classifier", "edr_classifier", "siem_classifier")
CPU_ENGINES = ("treelite", "onnxruntime")  # forest_scorer's engines that run without a GPU
# What CI serves: those (python backend) and the C++ Treelite backend, the GPU host's CPU model.
SERVED_ENGINES = (*CPU_ENGINES, deploy_gpu.CPP, bench_common.ROUTED)
ROUTED_FROM = 100  # the router's threshold here: forwards to <model>_treelite from 100 rows


def _version(model: str) -> Path:
    return MODEL_REPOSITORY / model / "1"


def _onnx(model: str) -> Path:
    return _version(model) / "model.onnx"


def _rows(model: str, n: int, seed: int) -> Any:
    """Random rows spread over the model's own split thresholds, so every branch is taken."""
    graph = onnx.load(str(_onnx(model))).graph
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in graph.node[0].attribute}
    thresholds = np.asarray([v for v, m in zip(attrs["nodes_values"], attrs["nodes_modes"], strict=True)
                             if m == b"BRANCH_LEQ"], np.float32)
    width = graph.input[0].type.tensor_type.shape.dim[1].dim_value
    rng = np.random.default_rng(seed)
    return rng.choice(thresholds, size=(n, width)).astype(np.float32) + rng.normal(0, 1e-3, (n, width)).astype(
        np.float32)


def _ort(model: str, x: Any) -> Any:
    return ort.InferenceSession(str(_onnx(model))).run(["probabilities"], {"features": x})[0]


def test_stats_percentiles_and_rate() -> None:
    s = bench_common.stats([0.001 * i for i in range(1, 101)], rows_per_request=10, wall_s=2.0)
    assert s["requests"] == 100
    assert s["p50_us"] == pytest.approx(50_500.0)
    assert s["p99_us"] == pytest.approx(99_010.0)
    assert s["rows_per_s"] == 500.0  # 100 requests x 10 rows over 2 s


def test_split_rows_and_two_columns() -> None:
    parts = forest_scorer.split_rows(np.arange(10), [np.zeros(3), np.zeros(0), np.zeros(7)])
    assert [p.tolist() for p in parts] == [[0, 1, 2], [], [3, 4, 5, 6, 7, 8, 9]]
    p = np.asarray([0.25, 1.0], np.float32)
    assert forest_scorer.two_columns(p, np).tolist() == [[0.75, 0.25], [0.0, 1.0]]
    assert forest_scorer.two_columns(p[:, None], np).tolist() == [[0.75, 0.25], [0.0, 1.0]]
    wide = np.asarray([[0.5, 0.5]], np.float32)
    assert np.shares_memory(forest_scorer.two_columns(wide, np), wide)  # no copy: already (1 - p, p)


@pytest.mark.parametrize("model", MODELS)
def test_cpu_engines_equal_onnxruntime(model: str) -> None:
    parts = [_rows(model, n, seed) for seed, n in enumerate((1, 37, 300))]
    want = _ort(model, np.concatenate(parts))
    for engine in CPU_ENGINES:
        got = forest_scorer.ForestScorer(_version(model), engine).score(parts)
        assert [g.shape for g in got] == [(1, 2), (37, 2), (300, 2)]
        assert np.abs(np.concatenate(got) - want).max() < 1e-5, engine


def test_engine_without_its_artefact_says_how_to_make_it(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(_onnx("netflow_classifier").read_bytes())
    with pytest.raises(FileNotFoundError, match="tree_export"):
        forest_scorer.ForestScorer(tmp_path, "treelite")
    with pytest.raises(ValueError, match="engine must be one of"):
        forest_scorer.ForestScorer(tmp_path, "torch")


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


def test_a_region_the_server_still_holds_is_unregistered_once_released() -> None:
    from tritonclient.utils import InferenceServerException

    t = object.__new__(transports.Transport)
    asked: list[str] = []

    class Server:
        def unregister_system_shared_memory(self, name: str) -> None:
            asked.append(name)
            if len(asked) < 3:  # the request that used it is not released yet
                raise InferenceServerException(f"Cannot unregister shared memory region '{name}', "
                                               "it is currently in use.")
            if name == "gone":
                raise InferenceServerException("Unable to find system shared memory region: 'gone'")

    t.kind, t.client = "shm", Server()
    t._unregister("in1")
    assert asked == ["in1"] * 3
    with pytest.raises(InferenceServerException, match="Unable to find"):
        t._unregister("gone")  # any other refusal is not retried
    assert asked[3:] == ["gone"]


def test_gpu_config_keeps_production_contract() -> None:
    production = (MODEL_REPOSITORY / "netflow_classifier" / "config.pbtxt").read_text()
    cfg = text_format.Parse(deploy_gpu.engine_config(production, "nvforest", max_batch=65536, gpu_instances=2,
                                                     cpu_threads=4), mc.ModelConfig())
    prod = text_format.Parse(production, mc.ModelConfig())
    assert cfg.name == "netflow_classifier_nvforest" and cfg.backend == "python"
    assert cfg.parameters["scorer_engine"].string_value == "nvforest"
    assert cfg.input == prod.input and cfg.output == prod.output
    assert cfg.dynamic_batching == prod.dynamic_batching and cfg.version_policy == prod.version_policy
    assert cfg.max_batch_size == 65536
    assert [(g.kind, g.count) for g in cfg.instance_group] == [(mc.ModelInstanceGroup.KIND_GPU, 2)]
    assert cfg.parameters["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value == "no"
    cpu = text_format.Parse(deploy_gpu.engine_config(production, "onnxruntime", max_batch=65536, gpu_instances=2,
                                                     cpu_threads=4), mc.ModelConfig())
    assert [g.kind for g in cpu.instance_group] == [mc.ModelInstanceGroup.KIND_CPU]
    assert cpu.parameters["onnx_intra_op_threads"].string_value == "4"
    assert cpu.parameters["scorer_engine"].string_value == "onnxruntime"
    with pytest.raises(ValueError, match="engine must be one of"):
        deploy_gpu.engine_config(production, "torch", max_batch=1, gpu_instances=1, cpu_threads=1)
    quick = text_format.Parse(deploy_gpu.engine_config(production, "nvforest", max_batch=1, gpu_instances=1,
                                                       cpu_threads=1, queue_delay_us=0), mc.ModelConfig())
    assert quick.dynamic_batching.max_queue_delay_microseconds == 0 < prod.dynamic_batching.max_queue_delay_microseconds


def test_router_config_has_no_batcher_unless_asked(tmp_path: Path) -> None:
    """The production name on a GPU host sends each request straight to an instance (no
    dynamic batcher: run 12 of docs/gpu-serving.md); --cpu-batching on puts one back."""
    production = (MODEL_REPOSITORY / "netflow_classifier" / "config.pbtxt").read_text()
    for engine in (bench_common.ROUTED, deploy_gpu.CPP):
        default = text_format.Parse(deploy_gpu.engine_config(production, engine, max_batch=4096, gpu_instances=1,
                                                              cpu_threads=1), mc.ModelConfig())
        assert not default.HasField("dynamic_batching"), engine
        batched = text_format.Parse(deploy_gpu.engine_config(production, engine, max_batch=4096, gpu_instances=1,
                                                              cpu_threads=1, cpu_batching=True), mc.ModelConfig())
        assert batched.HasField("dynamic_batching") and batched.dynamic_batching.max_queue_delay_microseconds == 0
    for flag, batcher in ((None, False), ("on", True), ("off", False)):
        out = tmp_path / f"repo-{flag}"
        deploy_gpu.main(["generate", "--out", str(out), "--engines", bench_common.ROUTED,
                         *(["--cpu-batching", flag] if flag else [])])
        config = text_format.Parse((out / "netflow_classifier" / "config.pbtxt").read_text(), mc.ModelConfig())
        assert config.HasField("dynamic_batching") == batcher, flag


def test_loopback_floor_measures_round_trips(tmp_path: Path) -> None:
    """The host's bare TCP round trip (deploy/gpu/loopback_floor.cc), the floor under the
    batch-1 gRPC numbers: it echoes every byte back and reports ordered percentiles."""
    import subprocess

    binary = tmp_path / "loopback_floor"
    subprocess.run(["c++", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(binary),
                    str(Path(deploy_gpu.HERE) / "loopback_floor.cc")], check=True)
    done = subprocess.run([str(binary), "300", "700"], capture_output=True, text=True, timeout=60, check=True)
    point = json.loads(done.stdout)
    assert (point["round_trips"], point["bytes"], point["client_cpu"], point["server_cpu"]) == (300, 700, -1, -1)
    assert 0 < point["p50_us"] <= point["p90_us"] <= point["p99_us"]
    pinned = json.loads(subprocess.run([str(binary), "200", "64", "0", "0"], capture_output=True, text=True,
                                       timeout=60, check=True).stdout)
    assert (pinned["client_cpu"], pinned["server_cpu"]) == (0, 0) and pinned["p50_us"] > 0
    assert subprocess.run([str(binary), "10"], capture_output=True, timeout=60).returncode == 2  # too few to rank


def test_a_tampered_checkpoint_is_not_served(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for model in MODELS:
        shutil.copytree(MODEL_REPOSITORY / model, src / model)
    with (src / "siem_classifier" / "1" / "model.tl").open("ab") as fh:
        fh.write(b"\0")
    deploy_gpu.generate(src, tmp_path / "repo", ["nvforest"])
    assert (tmp_path / "repo" / "netflow_classifier_nvforest" / "1" / "model.tl").is_file()
    assert not (tmp_path / "repo" / "siem_classifier_nvforest" / "1").exists()


def test_generated_repository_links_each_versions_artefacts(tmp_path: Path) -> None:
    names = deploy_gpu.generate(MODEL_REPOSITORY, tmp_path / "repo", ["nvforest", "treelite"])
    assert sorted(names) == sorted(f"{m}_{e}" for m in MODELS for e in ("nvforest", "treelite"))
    version = tmp_path / "repo" / "edr_classifier_nvforest" / "1"
    assert (version / "model.py").read_bytes() == (Path(deploy_gpu.HERE) / "model.py").read_bytes()
    assert (version / "model.tl").resolve() == (_version("edr_classifier") / "model.tl").resolve()
    assert (version / "model.onnx").resolve() == _onnx("edr_classifier").resolve()


@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """deploy/gpu's repository on a tritonserver (its CPU engines here); marks its tests gpu, triton.
    The C++ backend is asked for more Treelite threads than the host has (as CPU_MODEL_THREADS'
    8 on a small host): it must use the cores there are, not fail requests of 8 rows and more."""
    with gpu_repository_server(tmp_path_factory.mktemp("triton-gpu"), list(SERVED_ENGINES), max_batch=4096,
                               cpu_threads=1, cpu_model_threads=(os.cpu_count() or 1) + 1, large_engine="treelite",
                               small_request_rows=ROUTED_FROM) as url:
        yield url


@pytest.mark.parametrize("engine", SERVED_ENGINES)
@pytest.mark.parametrize("transport", ["grpc", "shm"])
def test_served_model_equals_onnxruntime(gpu_server: str, engine: str, transport: str) -> None:
    for model in MODELS:
        x = _rows(model, 700, seed=7)
        got = infer_once(gpu_server, bench_common.served_name(model, engine), transport, x, f"test{engine}")
        assert got.shape == (700, 2)
        assert np.abs(got - _ort(model, x)).max() < 1e-5


@pytest.mark.parametrize("transport", ["grpc", "shm"])
def test_router_scores_small_requests_itself_and_forwards_large_ones(gpu_server: str, transport: str) -> None:
    """The production name on a GPU host: below the threshold the C++ backend scores on the
    CPU; from it the request goes to the large-request model (here <model>_treelite, on a GPU
    host nvForest) inside the server, and its scores come back as the router's, into the
    client's shared-memory region too. Triton's own counters say which model ran each."""
    import tritonclient.grpc as grpcclient

    stats = grpcclient.InferenceServerClient(gpu_server)

    def count(name: str) -> int:
        s = stats.get_inference_statistics(name, as_json=True)["model_stats"][0]["inference_stats"]
        return int(s["success"].get("count", 0))

    for model in MODELS:
        for rows, forwarded in ((1, 0), (ROUTED_FROM - 1, 0), (ROUTED_FROM, 1), (3000, 1)):
            x = _rows(model, rows, seed=rows)
            before = (count(model), count(f"{model}_treelite"))
            got = infer_once(gpu_server, model, transport, x, f"route{rows}")
            assert got.shape == (rows, 2) and np.abs(got - _ort(model, x)).max() < 1e-5
            assert (count(model), count(f"{model}_treelite")) == (before[0] + 1, before[1] + forwarded), rows


def test_router_answers_concurrent_one_row_requests_each_with_its_own_scores(gpu_server: str) -> None:
    """One-row requests from several threads at once, each scored alone by an instance of
    the unbatched production name: every answer is its own row's score."""
    from concurrent.futures import ThreadPoolExecutor

    model = "edr_classifier"
    x = _rows(model, 48, seed=11)
    want = _ort(model, x)

    def one(i: int) -> Any:
        return infer_once(gpu_server, model, "grpc", x[i:i + 1], f"conc{i}")

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, range(len(x))))
    assert all(g.shape == (1, 2) for g in got)
    assert np.abs(np.concatenate(got) - want).max() < 1e-5


def test_cpp_backend_rejects_a_request_it_cannot_score(gpu_server: str) -> None:
    """A wrong row width fails that request with the reason (Triton checks shapes against the
    config first); the model keeps serving."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(gpu_server)
    bad = grpcclient.InferInput("features", [2, 5], "FP32")
    bad.set_data_from_numpy(np.zeros((2, 5), np.float32))
    with pytest.raises(InferenceServerException, match="shape"):
        client.infer(f"netflow_classifier_{deploy_gpu.CPP}", [bad])
    x = _rows("netflow_classifier", 3, seed=1)
    t = transports.Transport(gpu_server, f"netflow_classifier_{deploy_gpu.CPP}", "grpc", 3, x.shape[1], "after")
    try:
        assert np.abs(t.infer(x) - _ort("netflow_classifier", x)).max() < 1e-5
    finally:
        t.close()


def test_bench_run_writes_report(gpu_server: str, tmp_path: Path) -> None:
    feats = tmp_path / "feats.npz"
    np.savez(feats, netflow_classifier=_rows("netflow_classifier", 50, seed=3))
    out = tmp_path / "report.json"
    client_bench.main(["run", "--url", gpu_server, "--features", str(feats), "--engines", "treelite,onnxruntime",
                     "--transports", "grpc,shm", "--concurrency", "1,2", "--batches", "1,64",
                     "--duration", "0.05", "--min-requests", "3", "--out", str(out)])
    rows = json.loads(out.read_text())["server"]
    assert len(rows) == 2 * 2 * 2 + 1 * 2 * 2  # treelite: 2 transports; onnxruntime: grpc only
    assert all("error" not in r and r["max_abs_diff_vs_ort"] < 1e-5 and r["requests"] >= 3 for r in rows)


def test_perf_analyzer_csv_is_read() -> None:
    from deploy.gpu.perf_analyzer import parse_csv

    text = ("Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,"
            "Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency\n"
            "4,175518,2,332,306,18,567,228,0,1058,2736,3890,5800\n")
    row = parse_csv(text)
    assert row["rows_per_s"] == 175518 and row["p50_us"] == 1058 and row["p99_us"] == 5800
    assert row["p90_us"] == 2736 and row["p95_us"] == 3890
    assert row["server_compute_infer_us"] == 567 and row["network_us"] == 332


def test_perf_analyzer_inputs_are_the_real_rows(tmp_path: Path) -> None:
    """Batch-1 requests carry the feature file's rows, one request per row, under the model's
    input name; prepare puts the binary and its libraries under the names the binary links."""
    from deploy.gpu.perf_analyzer import LIBRARIES, input_data, prepare
    from scorer.inference.base import INPUT_NAME

    x = _rows("netflow_classifier", 5, seed=3)
    np.savez(tmp_path / "feats.npz", netflow_classifier=x)
    data = json.loads(input_data(tmp_path / "feats.npz", "netflow_classifier", 3, tmp_path).read_text())["data"]
    assert np.array_equal(np.asarray([step[INPUT_NAME] for step in data], dtype=np.float32), x[:3])

    wheel = tmp_path / "tritonclient-2.51.0-py3-none-manylinux1_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("tritonclient-2.51.0.data/data/bin/perf_analyzer", b"binary")
    libs = tmp_path / "nvidia_pytriton.libs"
    libs.mkdir()
    for prefix in LIBRARIES.values():
        (libs / f"{prefix}0123abcd.so.9").write_bytes(prefix.encode())
    binary = prepare(wheel, libs, tmp_path / "pa")
    assert binary.read_bytes() == b"binary" and binary.stat().st_mode & 0o111
    for soname, prefix in LIBRARIES.items():
        assert (binary.parent / "lib" / soname).read_bytes() == prefix.encode()


def test_many_scorers_bench_counts_every_process(gpu_server: str, tmp_path: Path) -> None:
    """Two scorer processes (the scorer's own TritonBackend) against one server: every
    micro-batch of every process is counted, each kind at its share of the micro-batch."""
    feats = tmp_path / "feats.npz"
    np.savez(feats, **{m: _rows(m, 30, seed=i) for i, m in enumerate(MODELS)})
    out = tmp_path / "scorers.json"
    scorers_bench.main(["--url", gpu_server, "--features", str(feats), "--engine", "treelite",
                        "--processes", "2", "--micro-batch", "60", "--duration", "0.3", "--out", str(out)])
    (point,) = json.loads(out.read_text())["points"]
    assert "errors" not in point and point["processes"] == 2
    assert point["rows_per_micro_batch"] == {m: 20 for m in MODELS}
    assert point["requests"] == 3 * point["micro_batches"] and point["micro_batches"] >= 2
    assert point["rows_per_s"] > 0 and point["p99_us"] >= point["p50_us"] > 0


def test_inprocess_bench_checks_and_times_cpu_engines(tmp_path: Path) -> None:
    feats = tmp_path / "feats.npz"
    np.savez(feats, siem_classifier=_rows("siem_classifier", 40, seed=5))
    out = tmp_path / "inprocess.json"
    inprocess_bench.main(["--features", str(feats), "--models", "siem_classifier",
                          "--engines", "treelite,onnxruntime", "--batches", "1,100", "--threads", "1",
                          "--min-calls", "3", "--min-s", "0", "--out", str(out)])
    rows = json.loads(out.read_text())["inprocess"]
    assert [(r["engine"], r["batch"]) for r in rows] == [("treelite", 1), ("treelite", 100), ("onnxruntime", 1),
                                                         ("onnxruntime", 100)]
    assert all(r["max_abs_diff_vs_ort"] < 1e-5 and r["requests"] >= 3 for r in rows)
