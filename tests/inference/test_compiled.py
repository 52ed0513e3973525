"""The compiled-trees engine in process (``inference.in_process_engine: compiled``): the
shipped models' ``model.tl`` compiled by this host's C compiler and scored by
scorer.native._trees give ONNX Runtime's scores and alert decisions on the capture's real
rows, missing values included; a version the engine cannot take is scored by ONNX Runtime
with a WARNING and a metric (an INFO line under ``auto`` where the host or the version is
expected to lack what it needs); the cache is reused; the lifecycle loads versions through it;
the service's default (``auto``) compiles where it can and the vectorized engine cannot
(tests/inference/test_vectorized.py: where it can, it scores).
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from scorer.config import Settings
from scorer.events.structs import EventKind
from scorer.features import feature_set
from scorer.inference import compiled_build
from scorer.inference.base import ModelRef
from scorer.inference.compiled import SAMPLE_ROWS, EngineUnavailable, check_rows, sample_rows
from scorer.inference.compiled_build import CHECKPOINT, LIBRARY, OPTIMIZE, agreement
from scorer.inference.compiled_build import build as build_with
from scorer.inference.failover import FailoverBackend
from scorer.inference.onnxruntime import Engine, OnnxRuntimeBackend
from scorer.inference.repository import CARD, load_version, write_checksums
from scorer.lifecycle.loader import RuntimeLoader
from scorer.native._trees import Trees
from scorer.service.build import build_backend, build_runtimes, load_rules, register_engine_metrics
from tests.deploy import test_gpu_compiled
from tests.support.paths import MODEL_REPOSITORY

MODELS = ("netflow_classifier", "edr_classifier", "siem_classifier")
NETFLOW = "netflow_classifier"
# The bundled capture's feature rows per model, as the scorer computes them: the fixture of the
# C++ backend's tests of the same libraries.
capture = test_gpu_compiled.capture


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One library cache for the module: each shipped model compiles once."""
    return tmp_path_factory.mktemp("compiled-cache")


def build(checkpoint: Path, cache: Path) -> Path:
    """The library the engine builds (its flags), into ``cache``."""
    return build_with(checkpoint, cache, OPTIMIZE)


def _onnxruntime(model: str, x: Any) -> Any:
    return OnnxRuntimeBackend._run(OnnxRuntimeBackend(MODEL_REPOSITORY).load(ModelRef(model)), x)


def _with_missing(x: Any, share: float = 0.3) -> Any:
    holed = np.array(x, np.float32)
    holed[np.random.default_rng(7).random(holed.shape) < share] = np.nan
    return holed


def _copy_version(repo: Path, model: str = NETFLOW, version: str = "1") -> Path:
    """A copy of the shipped ``model`` v1 as ``version`` of a repository of its own."""
    target = repo / model / version
    shutil.copytree(MODEL_REPOSITORY / model / "1", target)
    card = msgspec.json.decode((target / CARD).read_bytes())
    card["version"] = version
    (target / CARD).write_bytes(msgspec.json.encode(card))
    write_checksums(target)
    return target


@pytest.mark.parametrize("model", MODELS)
def test_the_c_loop_gives_onnxruntimes_scores(model: str, capture: Any, cache: Path) -> None:
    trees = Trees(str(build(MODEL_REPOSITORY / model / "1" / CHECKPOINT, cache)))
    threshold = load_version(MODEL_REPOSITORY, model).card.threshold
    for x in (capture[model], _with_missing(capture[model])):
        x = np.ascontiguousarray(x, np.float32)
        got = np.full(len(x), -1.0, np.float32)
        trees.score(x, got)
        found = agreement(got, _onnxruntime(model, x), threshold)
        assert found.rows == len(x) > 1000 and found.ok(), found


def test_the_c_loop_refuses_what_is_not_a_float32_matrix_of_its_width(cache: Path) -> None:
    trees = Trees(str(build(MODEL_REPOSITORY / NETFLOW / "1" / CHECKPOINT, cache)))
    assert (trees.n_features, trees.n_outputs) == (28, 1)
    out = np.empty(4, np.float32)
    for bad, into in ((np.zeros((4, 27), np.float32), out), (np.zeros((4, 28), np.float64), out),
                      (np.zeros((4, 28), np.float32)[:, ::-1], out), (np.zeros((4, 28), np.float32), out[:3])):
        with pytest.raises((ValueError, BufferError)):
            trees.score(bad, into)
    with pytest.raises(OSError, match="cannot open"):
        Trees(str(cache / "no-such-library.so"))


@pytest.mark.parametrize("model", MODELS)
async def test_the_backend_scores_with_the_compiled_trees(model: str, capture: Any, cache: Path) -> None:
    backend = OnnxRuntimeBackend(MODEL_REPOSITORY, [ModelRef(model)], engine="compiled", compiled_cache=cache)
    registry = CollectorRegistry()
    backend.metrics.register(registry)
    await backend.start()
    assert backend.engine_of(ModelRef(model)) == "compiled"
    assert registry.get_sample_value("scorer_inference_engine",
                                     {"model": model, "version": "1", "engine": "compiled"}) == 1
    threshold = backend.card(ModelRef(model)).threshold
    for x in (capture[model], _with_missing(capture[model]), capture[model][:1]):
        scores, source = await backend.infer_with_source(ModelRef(model), x)
        assert source == "onnxruntime" and scores.dtype == np.float32
        assert agreement(scores, _onnxruntime(model, np.ascontiguousarray(x)), threshold).ok()
    assert len(await backend.infer(ModelRef(model), capture[model][:0])) == 0
    await backend.close()
    assert registry.get_sample_value("scorer_inference_engine",
                                     {"model": model, "version": "1", "engine": "compiled"}) is None


def _fallback(backend: OnnxRuntimeBackend, registry: CollectorRegistry, reason: str) -> float:
    return registry.get_sample_value("scorer_inference_engine_fallbacks_total",
                                     {"model": NETFLOW, "engine": "compiled", "reason": reason}) or 0.0


@pytest.fixture
def no_vectorized(monkeypatch: pytest.MonkeyPatch) -> None:
    """``auto`` without the vectorized engine (its module not built: the GPU device machine's
    source tree), so that it tries the compiled one."""
    monkeypatch.setitem(sys.modules, "scorer.native._forest", None)


async def _loads_onnxruntime(repo: Path, cache: Path, reason: str, caplog: pytest.LogCaptureFixture,
                             capture: Any, engine: Engine = "compiled") -> str:
    """Loads netflow from ``repo`` with ``engine``; checks it is scored by ONNX Runtime,
    exactly, and counted under ``reason``; returns the log line saying so: a WARNING, or with
    ``auto`` an INFO line (and no WARNING) where the reason is one a host may expect."""
    backend = OnnxRuntimeBackend(repo, engine=engine, compiled_cache=cache)
    registry = CollectorRegistry()
    backend.metrics.register(registry)
    with caplog.at_level(logging.INFO, logger="scorer.inference.onnxruntime"):
        assert backend.engine_of(ModelRef(NETFLOW)) == "onnxruntime"
    assert _fallback(backend, registry, reason) == 1
    assert registry.get_sample_value("scorer_inference_engine",
                                     {"model": NETFLOW, "version": "1", "engine": "onnxruntime"}) == 1
    x = capture[NETFLOW]
    assert np.array_equal(await backend.infer(ModelRef(NETFLOW), x), _onnxruntime(NETFLOW, x))
    quiet = engine == "auto" and reason in EngineUnavailable.EXPECTED
    said = [r for r in caplog.records if "not scored by the compiled engine" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.INFO if quiet else logging.WARNING]
    return said[0].getMessage()


@pytest.mark.usefixtures("no_vectorized")
@pytest.mark.parametrize("engine", ["compiled", "auto"])
async def test_no_compiler_falls_back_to_onnxruntime(engine: Engine, tmp_path: Path, capture: Any,
                                                     caplog: pytest.LogCaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    message = await _loads_onnxruntime(MODEL_REPOSITORY, tmp_path / "cache", "toolchain", caplog, capture, engine)
    assert "no C compiler" in message


@pytest.mark.usefixtures("no_vectorized")
async def test_auto_without_tl2cgen_scores_with_onnxruntime_quietly(tmp_path: Path, capture: Any,
                                                                    caplog: pytest.LogCaptureFixture,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> str:
        raise ImportError("No module named 'tl2cgen'")

    monkeypatch.setattr(compiled_build, "tl2cgen_version", missing)
    message = await _loads_onnxruntime(MODEL_REPOSITORY, tmp_path / "cache", "toolchain", caplog, capture, "auto")
    assert "tl2cgen is not installed" in message


async def test_an_unwritable_cache_falls_back_to_onnxruntime(tmp_path: Path, capture: Any,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache's parent directory should be")
    message = await _loads_onnxruntime(MODEL_REPOSITORY, blocked / "cache", "build", caplog, capture)
    assert "cannot build in the cache" in message


async def test_a_library_of_other_trees_fails_the_check(tmp_path: Path, capture: Any, cache: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """The cache holds, under the shipped checkpoint's key, a library built from other trees
    (one leaf moved): the check against ONNX Runtime refuses it."""
    import treelite

    tree = treelite.Model.deserialize(str(MODEL_REPOSITORY / NETFLOW / "1" / CHECKPOINT))
    first = tree.get_tree_accessor(0)
    first.set_field("leaf_value", first.get_field("leaf_value") + np.float32(0.5))
    tree.serialize(str(tmp_path / "other.tl"))
    other = build(tmp_path / "other.tl", tmp_path / "cache")
    shutil.copy(other, build(MODEL_REPOSITORY / NETFLOW / "1" / CHECKPOINT, tmp_path / "cache"))
    message = await _loads_onnxruntime(MODEL_REPOSITORY, tmp_path / "cache", "mismatch", caplog, capture)
    assert "disagrees with ONNX Runtime" in message


async def test_a_library_of_another_model_fails_the_check(tmp_path: Path, capture: Any, cache: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    siem = build(MODEL_REPOSITORY / "siem_classifier" / "1" / CHECKPOINT, cache)
    shutil.copy(siem, build(MODEL_REPOSITORY / NETFLOW / "1" / CHECKPOINT, tmp_path / "cache"))
    message = await _loads_onnxruntime(MODEL_REPOSITORY, tmp_path / "cache", "mismatch", caplog, capture)
    assert "takes 88 features, the card lists 28" in message


@pytest.mark.usefixtures("no_vectorized")
@pytest.mark.parametrize("engine", ["compiled", "auto"])
@pytest.mark.parametrize("change", ["missing", "unlisted"])
async def test_a_checkpoint_absent_or_not_covered_by_the_checksums(change: str, engine: Engine, tmp_path: Path,
                                                                  capture: Any, cache: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Under ``auto`` a version without a checkpoint (a model that is not trees) is expected;
    one whose checkpoint the checksums do not cover is not, and gets the WARNING."""
    version = _copy_version(tmp_path / "repo")
    if change == "missing":
        (version / CHECKPOINT).unlink()
        write_checksums(version)
    else:
        sums = version / "SHA256SUMS"
        sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines()
                                if not line.endswith(CHECKPOINT)))
    reason = {"missing": "no_checkpoint", "unlisted": "integrity"}[change]
    message = await _loads_onnxruntime(tmp_path / "repo", cache, reason, caplog, capture, engine)
    assert CHECKPOINT in message


def test_the_check_rows_are_the_golden_set_by_column_name_then_the_sample(tmp_path: Path, capture: Any,
                                                                         cache: Path) -> None:
    version_dir = _copy_version(tmp_path / "repo")
    names = load_version(tmp_path / "repo", NETFLOW).card.feature_names
    x = np.asarray(capture[NETFLOW][:300], np.float32)
    order = np.random.default_rng(3).permutation(len(names))  # stored in another column order
    np.savez(version_dir / "golden.npz", features=x[:, order], labels=np.zeros(len(x), np.int8),
             feature_names=np.array(names)[order])
    write_checksums(version_dir)
    version = load_version(tmp_path / "repo", NETFLOW)
    rows = check_rows(version, len(names))
    assert np.array_equal(rows[:300], x) and np.array_equal(rows[300:], sample_rows(len(names)), equal_nan=True)
    assert OnnxRuntimeBackend(tmp_path / "repo", engine="compiled", compiled_cache=cache).engine_of(
        ModelRef(NETFLOW)) == "compiled"
    np.savez(version_dir / "golden.npz", features=x[:, 1:], feature_names=np.array(names[1:]))
    assert len(check_rows(version, len(names))) == SAMPLE_ROWS, "a golden set lacking a column is not read"
    (version_dir / "golden.npz").write_bytes(b"not a zip")
    assert len(check_rows(version, len(names))) == SAMPLE_ROWS
    assert np.isnan(sample_rows(len(names))).mean() > 0.05


def test_a_second_load_reuses_the_cached_library(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = OnnxRuntimeBackend(MODEL_REPOSITORY, engine="compiled", compiled_cache=cache)
    assert first.engine_of(ModelRef(NETFLOW)) == "compiled"
    (entry,) = cache.iterdir()
    library = entry / LIBRARY
    stat = library.stat()
    second = OnnxRuntimeBackend(MODEL_REPOSITORY, engine="compiled", compiled_cache=cache)
    assert second.engine_of(ModelRef(NETFLOW)) == "compiled"
    assert list(cache.iterdir()) == [entry], "no second build, no build directory left behind"
    after = library.stat()
    assert (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)


def test_concurrent_builds_of_one_version_leave_one_library(tmp_path: Path) -> None:
    """Processes building the same checkpoint at once each compile in their own directory;
    the first rename wins and every one returns the winner's complete library."""
    import concurrent.futures
    import multiprocessing

    checkpoint, cache = MODEL_REPOSITORY / NETFLOW / "1" / CHECKPOINT, tmp_path / "cache"
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(3, mp_context=context) as pool:
        libraries = set(pool.map(build_with, [checkpoint] * 3, [cache] * 3, [OPTIMIZE] * 3))
    assert libraries == {build(checkpoint, cache)}
    assert [p.name for p in cache.iterdir()] == [next(iter(libraries)).parent.name]
    assert Trees(str(next(iter(libraries)))).n_features == 28


async def test_the_lifecycle_loads_a_new_version_through_the_compiled_engine(tmp_path: Path, cache: Path,
                                                                             capture: Any) -> None:
    """A version switch (promote, rollback) loads the version through RuntimeLoader, which
    opens it in the in-process backend: with the compiled engine, its trees score it."""
    repo = tmp_path / "repo"
    _copy_version(repo, "siem_classifier", "1")
    _copy_version(repo, "siem_classifier", "2")
    backend = OnnxRuntimeBackend(repo, engine="compiled", compiled_cache=cache)
    registry = CollectorRegistry()
    backend.metrics.register(registry)
    loader = RuntimeLoader(repo, backend, sync_command=[])
    live = feature_set(EventKind.SIEM, load_version(repo, "siem_classifier", "1").card.feature_set)
    runtime = await loader.runtime(EventKind.SIEM, "siem_classifier", "2", live)
    assert runtime.model == ModelRef("siem_classifier", "2")
    assert backend.engine_of(runtime.model) == "compiled"
    x = capture["siem_classifier"]
    assert agreement(await backend.infer(runtime.model, x), _onnxruntime("siem_classifier", x), 0.5).ok()
    labels = {"model": "siem_classifier", "version": "2", "engine": "compiled"}
    assert registry.get_sample_value("scorer_inference_engine", labels) == 1
    loader.unload_local(runtime.model)
    assert registry.get_sample_value("scorer_inference_engine", labels) is None
    assert backend.loaded() == []


@pytest.mark.parametrize("engine", ["compiled", None])
@pytest.mark.parametrize("backend", ["onnxruntime", "triton"])
async def test_the_setting_reaches_the_in_process_backend_and_triton_s_fallback(
    backend: str, engine: str | None, cache: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the compiled engine, or the service's default (``auto``: the vectorized engine on
    this host, which has AVX2), the service's in-process scorer (the backend itself, or
    Triton's fallback) loads the runtimes' versions at start with that engine, and its
    metrics reach the service's registry. Nothing connects to Triton here."""
    monkeypatch.delenv("SCORER_INFERENCE__IN_PROCESS_ENGINE", raising=False)  # tests/conftest.py's pin
    inference = {"backend": backend, "compiled_cache": cache, "model_repository": MODEL_REPOSITORY}
    if engine is not None:
        inference["in_process_engine"] = engine
    settings = Settings(inference=inference)  # type: ignore[arg-type]
    runtimes = build_runtimes(settings, rules=load_rules(settings))
    built = build_backend(settings, runtimes)
    local = built.fallback if isinstance(built, FailoverBackend) else built
    assert isinstance(local, OnnxRuntimeBackend) and local.engine == (engine or "auto")
    registry = CollectorRegistry()
    register_engine_metrics(built, registry)
    await local.start()
    assert set(local.loaded()) == {rt.model for rt in runtimes.values()} and len(runtimes) == 3
    for ref in local.loaded():
        assert registry.get_sample_value("scorer_inference_engine",
                                         {"model": ref.name, "version": "1", "engine": engine or "vectorized"}) == 1
