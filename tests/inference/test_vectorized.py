"""The vectorized engine (``inference.in_process_engine: vectorized``, and ``auto``'s first):
the shipped models' ONNX tree ensembles read without the ``onnx`` package and scored by
scorer.native._forest give ONNX Runtime's scores and decisions on the capture's real rows,
missing values and ties at a threshold included, with every kernel this CPU runs (each the
same bits as the others); BRANCH_LT models too; a version the engine cannot take goes to
the next engine with a metric; bad arrays and matrices are refused with a clear error.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from scorer.inference.base import ModelRef
from scorer.inference.compiled import EngineUnavailable
from scorer.inference.compiled_build import agreement
from scorer.inference.onnx_wire import WireError, node_attributes
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.inference.repository import MODEL_FILE, load_version, write_checksums
from scorer.inference.vectorized import forest_arrays, open_vectorized, vectorized_check
from scorer.native import _forest
from tests.inference.test_compiled import MODELS, NETFLOW, _copy_version, _onnxruntime, _with_missing, capture
from tests.support.paths import MODEL_REPOSITORY

__all__ = ["capture"]  # the capture's feature rows per model (a fixture)


def _onnx(model: str) -> bytes:
    return (MODEL_REPOSITORY / model / "1" / MODEL_FILE).read_bytes()


def _at_thresholds(x: Any, model: str) -> Any:
    """Rows whose cells sit exactly on thresholds the model tests (x <= t against x < t)."""
    arrays, _ = forest_arrays(_onnx(model))
    tied = np.array(x, np.float32)
    rng = np.random.default_rng(11)
    picks = rng.integers(0, len(arrays.feature), size=(len(tied), 8))
    for r, nodes in enumerate(picks):
        tied[r, arrays.feature[nodes]] = arrays.threshold[nodes]
    return tied


@pytest.mark.parametrize("model", MODELS)
def test_the_wire_reader_reads_what_onnx_reads(model: str) -> None:
    onnx = pytest.importorskip("onnx")
    proto = onnx.load_from_string(_onnx(model))
    (node,) = [n for n in proto.graph.node if n.op_type == "TreeEnsembleClassifier"]
    expected = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    (read,) = node_attributes(_onnx(model), "TreeEnsembleClassifier")
    assert read.keys() == expected.keys()
    for name, value in expected.items():
        assert read[name] == (value if isinstance(value, bytes | int | float) else list(value)), name
    assert node_attributes(_onnx(model), "TreeEnsembleRegressor") == []
    with pytest.raises(WireError):
        node_attributes(_onnx(model)[:1000], "TreeEnsembleClassifier")


@pytest.mark.parametrize("model", MODELS)
def test_every_kernel_gives_onnxruntimes_scores(model: str, capture: Any) -> None:
    version = load_version(MODEL_REPOSITORY, model)
    trees = open_vectorized(version, lambda rows: _onnxruntime(model, rows))
    assert _forest.kernels()[0] == "scalar" and trees.kernel == _forest.kernels()[-1] != "scalar"
    for x in (capture[model], _with_missing(capture[model]), _at_thresholds(capture[model], model),
              capture[model][:1], capture[model][:17]):
        x = np.ascontiguousarray(x, np.float32)
        expected = _onnxruntime(model, x)
        scored = {kernel: trees.score(x, kernel) for kernel in _forest.kernels()}
        for kernel, got in scored.items():
            found = agreement(got, expected, version.card.threshold)
            assert found.rows == len(x) and found.ok(), (kernel, found)
            # one order of sums, one logistic: every kernel the same bits
            assert np.array_equal(got, scored["scalar"]), kernel


@pytest.mark.parametrize("model", MODELS)
def test_every_row_count_is_scored_as_the_scalar_kernel_scores_it(model: str, capture: Any) -> None:
    """The vector kernels score up to four blocks of rows in one pass, of the features the trees
    test only: every count of rows (a block's and a pass's edges and past them), rows with
    missing values and hostile ones (infinities, huge values) give the scalar kernel's bits."""
    version = load_version(MODEL_REPOSITORY, model)
    trees = open_vectorized(version, lambda rows: _onnxruntime(model, rows))
    rng = np.random.default_rng(5)
    rows = np.ascontiguousarray(_with_missing(capture[model]), np.float32)
    hostile = rows[:40].copy()
    hostile[rng.random(hostile.shape) < 0.2] = np.inf
    hostile[rng.random(hostile.shape) < 0.2] = -np.float32(3e38)
    pool = np.concatenate([rows, hostile])
    for n in [*range(0, 70), 127, 128, 129, 1023, 1024, 1025]:
        x = np.ascontiguousarray(pool[rng.integers(0, len(pool), n)])
        scalar = trees.score(x, "scalar")
        for kernel in _forest.kernels()[1:]:
            assert np.array_equal(trees.score(x, kernel), scalar, equal_nan=True), (kernel, n)
    wide = np.ascontiguousarray(pool[rng.integers(0, len(pool), 9)])
    out = np.empty(9, np.float32)
    score: Any = trees.forest.score  # the calls below are wrong on purpose
    for args, kwargs in (((wide,), {}), ((wide, out, "avx2"), {}), ((wide, out), {"kernel": 2}),
                         ((wide, out), {"kernels": "avx2"})):
        with pytest.raises(TypeError):
            score(*args, **kwargs)
    score(features=wide, out=out)
    assert np.array_equal(out, trees.score(wide, "scalar"))


def test_a_branch_lt_model_is_scored_as_onnxruntime_scores_it(tmp_path: Path, capture: Any) -> None:
    """The netflow model with every ``<=`` made ``<``: ONNX Runtime's scores of it are the reference."""
    onnx = pytest.importorskip("onnx")
    version_dir = _copy_version(tmp_path / "repo")
    proto = onnx.load(str(version_dir / MODEL_FILE))
    (modes,) = [a for a in proto.graph.node[0].attribute if a.name == "nodes_modes"]
    lt = [b"BRANCH_LT" if m == b"BRANCH_LEQ" else m for m in modes.strings]
    del modes.strings[:]
    modes.strings.extend(lt)
    onnx.save(proto, str(version_dir / MODEL_FILE))
    write_checksums(version_dir)
    backend = OnnxRuntimeBackend(tmp_path / "repo", engine="onnxruntime")
    loaded = backend.load(ModelRef(NETFLOW))
    trees = open_vectorized(loaded.version, lambda rows: backend._run(loaded, rows))
    x = np.ascontiguousarray(_at_thresholds(capture[NETFLOW], NETFLOW), np.float32)
    expected = backend._run(loaded, x)
    for kernel in _forest.kernels():
        assert agreement(trees.score(x, kernel), expected, 0.5).ok(), kernel
    leq = open_vectorized(load_version(MODEL_REPOSITORY, NETFLOW), lambda rows: _onnxruntime(NETFLOW, rows))
    assert not np.array_equal(leq.score(x), trees.score(x)), "the ties must reach both sides"


@pytest.mark.parametrize("model", MODELS)
async def test_the_backend_scores_with_the_vectorized_engine(model: str, capture: Any) -> None:
    backend = OnnxRuntimeBackend(MODEL_REPOSITORY, [ModelRef(model)], engine="vectorized")
    registry = CollectorRegistry()
    backend.metrics.register(registry)
    await backend.start()
    assert backend.engine_of(ModelRef(model)) == "vectorized"
    labels = {"model": model, "version": "1", "engine": "vectorized"}
    assert registry.get_sample_value("scorer_inference_engine", labels) == 1
    for x in (capture[model], _with_missing(capture[model]), capture[model][:1]):
        scores, source = await backend.infer_with_source(ModelRef(model), x)
        assert source == "onnxruntime" and scores.dtype == np.float32
        assert agreement(scores, _onnxruntime(model, np.ascontiguousarray(x)),
                         backend.card(ModelRef(model)).threshold).ok()
    assert len(await backend.infer(ModelRef(model), capture[model][:0])) == 0
    await backend.close()
    assert registry.get_sample_value("scorer_inference_engine", labels) is None


def _engine_and_fallbacks(repo: Path, engine: Any, tmp_path: Path) -> tuple[str, dict[tuple[str, str], float]]:
    backend = OnnxRuntimeBackend(repo, engine=engine, compiled_cache=tmp_path / "cache")
    registry = CollectorRegistry()
    backend.metrics.register(registry)
    used = backend.engine_of(ModelRef(NETFLOW))
    fallbacks = {(s.labels["engine"], s.labels["reason"]): s.value for m in registry.collect()
                 for s in m.samples if s.name == "scorer_inference_engine_fallbacks_total"}
    return used, fallbacks


def test_auto_takes_the_vectorized_engine_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))  # the compiled engine could not build here
    assert _engine_and_fallbacks(MODEL_REPOSITORY, "auto", tmp_path) == ("vectorized", {})


def test_auto_without_the_module_takes_the_compiled_engine_quietly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A source tree where scorer.native is not built (the GPU device machine runs one)."""
    monkeypatch.setitem(sys.modules, "scorer.native._forest", None)  # import raises ImportError
    with caplog.at_level(logging.INFO, logger="scorer.inference.onnxruntime"):
        assert _engine_and_fallbacks(MODEL_REPOSITORY, "auto", tmp_path) == ("compiled", {("vectorized", "native"): 1})
    said = [r for r in caplog.records if "not scored by the vectorized engine (native)" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.INFO]
    with caplog.at_level(logging.INFO, logger="scorer.inference.onnxruntime"):
        assert _engine_and_fallbacks(MODEL_REPOSITORY, "vectorized", tmp_path) == (
            "onnxruntime", {("vectorized", "native"): 1})
    assert [r.levelno for r in caplog.records if "(native)" in r.getMessage()][-1] == logging.WARNING


def test_a_model_file_changed_after_its_load_is_refused(tmp_path: Path) -> None:
    version_dir = _copy_version(tmp_path / "repo")
    version = load_version(tmp_path / "repo", NETFLOW)
    (version_dir / MODEL_FILE).write_bytes((version_dir / MODEL_FILE).read_bytes() + b"\x00")
    with pytest.raises(EngineUnavailable, match="sha256 does not match") as raised:
        open_vectorized(version, lambda rows: _onnxruntime(NETFLOW, rows))
    assert raised.value.reason == "integrity"


def test_a_forest_that_disagrees_with_the_reference_is_refused() -> None:
    version = load_version(MODEL_REPOSITORY, NETFLOW)
    with pytest.raises(EngineUnavailable, match="disagrees with ONNX Runtime") as raised:
        open_vectorized(version, lambda rows: _onnxruntime(NETFLOW, rows) + np.float32(1e-3))
    assert raised.value.reason == "mismatch"


def test_what_the_engine_does_not_score_is_said() -> None:
    for model, reason in ((b"", "not_trees"), (b"\x3a\x05\x0a\x03\x22\x01\x58", "not_trees")):
        with pytest.raises(EngineUnavailable) as raised:
            forest_arrays(model)
        assert raised.value.reason == reason
    arrays, base = forest_arrays(_onnx(NETFLOW))
    assert base == 0.0 and arrays.mode == _forest.BRANCH_LEQ and len(arrays.split) == 150


def test_the_forest_refuses_bad_arrays_and_matrices() -> None:
    arrays, base = forest_arrays(_onnx(NETFLOW))

    def forest(**changed: Any) -> Any:
        parts = {"start": arrays.start, "split": arrays.split, "feature": arrays.feature,
                 "threshold": arrays.threshold, "mask": arrays.mask, "leaves": arrays.leaves, **changed}
        return _forest.Forest(parts["start"], parts["split"], parts["feature"], parts["threshold"], parts["mask"],
                              parts["leaves"], 28, base, True, arrays.mode)

    good = forest()
    assert (good.n_trees, good.n_features, good.n_nodes) == (150, 28, len(arrays.feature))
    too_far = np.where(arrays.feature == 0, 28, arrays.feature).astype(np.int32)
    for bad, match in (({"feature": too_far}, "tests feature"),
                       ({"mask": np.zeros_like(arrays.mask)}, "rule out every leaf"),
                       ({"split": arrays.start[1:] + 1}, "start <= split"),
                       ({"threshold": arrays.threshold.astype(np.float64)}, "format 'f'"),
                       ({"leaves": arrays.leaves[:-1]}, "items")):
        with pytest.raises(ValueError, match=match):
            forest(**bad)
    out = np.empty(4, np.float32)
    for x, into in ((np.zeros((4, 27), np.float32), out), (np.zeros((4, 28), np.float64), out),
                    (np.zeros((4, 28), np.float32), out[:3])):
        with pytest.raises(ValueError):
            good.score(x, into)
    with pytest.raises(ValueError, match="not one of"):
        good.score(np.zeros((4, 28), np.float32), out, kernel="sse9")


def test_validate_says_whether_the_default_engine_takes_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    version = load_version(MODEL_REPOSITORY, NETFLOW)
    ok, detail = vectorized_check(version, lambda rows: _onnxruntime(NETFLOW, rows))
    assert ok and "150 trees" in detail
    ok, detail = vectorized_check(version, lambda rows: _onnxruntime(NETFLOW, rows) + np.float32(1e-3))
    assert not ok and detail.startswith("mismatch")
    monkeypatch.setitem(sys.modules, "scorer.native._forest", None)
    ok, detail = vectorized_check(version, lambda rows: _onnxruntime(NETFLOW, rows))
    assert ok and detail.startswith("not taken (native")
