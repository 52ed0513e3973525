"""OnnxRuntimeBackend against a real sklearn -> skl2onnx model in a real repository."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scorer.errors import InferenceError, IntegrityError, ModelError
from scorer.inference.base import FloatMatrix, FloatVector, InferenceBackend, ModelRef
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.inference.repository import MODEL_FILE
from tests.support.models import TinyModel, build_tiny_model, publish_tiny_model, synthetic_data

N_FEATURES = 8


@pytest.fixture
def tiny(tmp_path: Path) -> TinyModel:
    model = build_tiny_model("tiny", "1", n_features=N_FEATURES)
    publish_tiny_model(tmp_path, model)
    return model


async def test_scores_match_sklearn(tmp_path: Path, tiny: TinyModel) -> None:
    backend = OnnxRuntimeBackend(tmp_path, [ModelRef("tiny", "1")])
    assert isinstance(backend, InferenceBackend)
    await backend.start()
    features, _ = synthetic_data(5_000, N_FEATURES, seed=7)
    scores = await backend.infer(ModelRef("tiny", "1"), features)
    assert scores.dtype == np.float32 and scores.shape == (5_000,)
    np.testing.assert_allclose(scores, tiny.expected(features), atol=1e-6)
    assert backend.card(ModelRef("tiny", "1")).threshold == tiny.card.threshold
    await backend.close()


async def test_offloaded_batches_score_the_same(tmp_path: Path, tiny: TinyModel) -> None:
    backend = OnnxRuntimeBackend(tmp_path, offload_rows=100)
    features, _ = synthetic_data(1_000, N_FEATURES, seed=3)
    scores = await backend.infer(ModelRef("tiny"), features)
    np.testing.assert_allclose(scores, tiny.expected(features), atol=1e-6)


async def test_latest_version_loads_lazily_and_stays_pinned(tmp_path: Path) -> None:
    publish_tiny_model(tmp_path, build_tiny_model("tiny", "1", n_features=N_FEATURES))
    backend = OnnxRuntimeBackend(tmp_path)
    assert backend.model_version(ModelRef("tiny")).version == "1"
    newer = build_tiny_model("tiny", "2", n_features=N_FEATURES, seed=5)
    publish_tiny_model(tmp_path, newer)
    assert backend.model_version(ModelRef("tiny")).version == "1"  # pinned until unload
    backend.unload(ModelRef("tiny"))
    assert backend.card(ModelRef("tiny")).version == "2"
    assert backend.versions("tiny") == ["1", "2"]


async def test_tampered_model_is_refused(tmp_path: Path, tiny: TinyModel) -> None:
    onnx_path = tmp_path / "tiny" / "1" / MODEL_FILE
    onnx_path.write_bytes(onnx_path.read_bytes() + b"\0")
    backend = OnnxRuntimeBackend(tmp_path, [ModelRef("tiny", "1")])
    with pytest.raises(IntegrityError):
        await backend.start()
    assert not await backend.ready(ModelRef("tiny", "1"))


async def test_unknown_model_and_version(tmp_path: Path, tiny: TinyModel) -> None:
    backend = OnnxRuntimeBackend(tmp_path)
    assert not await backend.ready(ModelRef("nope"))
    assert not await backend.ready(ModelRef("tiny", "9"))
    with pytest.raises(ModelError):
        await backend.infer(ModelRef("tiny", "9"), np.zeros((1, N_FEATURES), np.float32))


async def test_wrong_feature_count_is_an_inference_error(tmp_path: Path, tiny: TinyModel) -> None:
    backend = OnnxRuntimeBackend(tmp_path)
    with pytest.raises(InferenceError):
        await backend.infer(ModelRef("tiny"), np.zeros((3, N_FEATURES + 1), np.float32))
    empty = await backend.infer(ModelRef("tiny"), np.zeros((0, N_FEATURES), np.float32))
    assert empty.shape == (0,)


@pytest.mark.parametrize("engine", ["onnxruntime", "vectorized"])
async def test_in_line_scores_are_infer_s(tmp_path: Path, tiny: TinyModel, engine: str) -> None:
    """The pipeline's in-line call (infer_now) answers what infer answers, the backend named;
    none for a call infer hands to a thread, and errors alike (wrong shape, unknown model)."""
    backend = OnnxRuntimeBackend(tmp_path, offload_rows=64, engine=engine)  # type: ignore[arg-type]
    rng = np.random.default_rng(11)
    for rows in (0, 1, 17, 63):
        features = rng.normal(size=(rows, N_FEATURES)).astype(np.float32)
        features[rng.random(features.shape) < 0.1] = np.nan
        now = backend.infer_now(ModelRef("tiny", "1"), features)
        assert now is not None and now[1] == "onnxruntime"
        awaited = await backend.infer(ModelRef("tiny", "1"), features)
        assert now[0].dtype == np.float32 and now[0].tobytes() == awaited.tobytes()
    strided = rng.normal(size=(9, 2 * N_FEATURES)).astype(np.float64)[:, ::2]  # converted as infer converts it
    now = backend.infer_now(ModelRef("tiny", "1"), strided)  # type: ignore[arg-type]
    assert now is not None and now[0].tobytes() == (await backend.infer(ModelRef("tiny", "1"), strided)).tobytes()  # type: ignore[arg-type]
    assert backend.infer_now(ModelRef("tiny", "1"), np.zeros((64, N_FEATURES), np.float32)) is None
    for bad in (np.zeros((3, N_FEATURES + 1), np.float32), np.zeros(3, np.float32)):
        with pytest.raises(InferenceError):
            backend.infer_now(ModelRef("tiny", "1"), bad)
        with pytest.raises(InferenceError):
            await backend.infer(ModelRef("tiny", "1"), bad)
    with pytest.raises(ModelError):
        backend.infer_now(ModelRef("absent", "1"), np.zeros((2, N_FEATURES), np.float32))


async def test_a_subclass_that_scores_otherwise_is_never_in_line(tmp_path: Path, tiny: TinyModel) -> None:
    class Doubled(OnnxRuntimeBackend):
        async def infer(self, model: ModelRef, features: FloatMatrix) -> FloatVector:
            return 2 * await super().infer(model, features)

    assert Doubled(tmp_path).infer_now(ModelRef("tiny", "1"), np.zeros((2, N_FEATURES), np.float32)) is None
