"""Tiny real models for tests: sklearn LogisticRegression exported to ONNX by skl2onnx.

The exported graph follows the tensor contract of scorer.inference.base: input ``features``
FP32 [batch, n_features], output ``probabilities`` FP32 [batch, 2]. It also carries a
``label`` output (skl2onnx always emits it); backends request ``probabilities`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression

from scorer.inference.base import INPUT_NAME, OUTPUT_NAME
from scorer.inference.repository import ModelCard, ModelVersion, publish_version


@dataclass(frozen=True)
class TinyModel:
    """A fitted estimator, its ONNX bytes and the card that describes it."""

    estimator: LogisticRegression
    onnx_bytes: bytes
    card: ModelCard

    def expected(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """P(malicious) computed by sklearn itself: the reference every backend must match."""
        probabilities: npt.NDArray[np.float64] = self.estimator.predict_proba(features)
        return probabilities[:, 1].astype(np.float32)


def synthetic_data(
    n_rows: int, n_features: int, *, seed: int = 0
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Two overlapping Gaussian blobs: a linearly separable-ish binary problem."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n_rows)
    shift = np.linspace(0.5, 1.5, n_features, dtype=np.float32)
    features = rng.normal(size=(n_rows, n_features)).astype(np.float32)
    features += labels[:, None].astype(np.float32) * shift
    return features, labels


def build_tiny_model(
    name: str = "tiny", version: str = "1", *, n_features: int = 8, seed: int = 0
) -> TinyModel:
    features, labels = synthetic_data(2_000, n_features, seed=seed)
    estimator = LogisticRegression(max_iter=500).fit(features, labels)
    onx = to_onnx(
        estimator,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        # zipmap off: a plain FP32 [batch, 2] tensor instead of a list of dicts.
        options={id(estimator): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    # skl2onnx names the probability output "probabilities" today; enforce the contract
    # rather than depend on that default.
    prob = onx.graph.output[1]
    if prob.name != OUTPUT_NAME:
        for node in onx.graph.node:
            node.output[:] = [OUTPUT_NAME if o == prob.name else o for o in node.output]
        prob.name = OUTPUT_NAME
    card = ModelCard(
        name=name,
        kind="netflow",
        version=version,
        feature_names=[f"f{i}" for i in range(n_features)],
        threshold=0.5,
        learner="LogisticRegression",
        description="tiny synthetic test model",
    )
    return TinyModel(estimator, onx.SerializeToString(), card)


def publish_tiny_model(repo: Path, model: TinyModel) -> ModelVersion:
    return publish_version(repo, model.card, model.onnx_bytes)
