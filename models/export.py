"""From a fitted classifier to a published model version: ONNX, explanations, card.

The ONNX graph takes ``features`` FP32 ``[batch, n]`` and returns ``probabilities`` FP32
``[batch, 2]`` (no ZipMap), the scorer's tensor contract. Publishing refuses a graph whose
scores differ from scikit-learn's by more than 1e-5.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import Ridge

from scorer.inference.base import INPUT_NAME, OUTPUT_NAME
from scorer.inference.repository import ModelCard, ModelVersion, publish_version

PARITY_TOL = 1e-5
TARGET_OPSET = 17


def onnx_bytes(model: Any, n_features: int) -> bytes:
    proto = to_onnx(
        model,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": TARGET_OPSET, "ai.onnx.ml": 3},
    )
    names = [o.name for o in proto.graph.output]
    if OUTPUT_NAME not in names:
        raise RuntimeError(f"converted graph has outputs {names}, not {OUTPUT_NAME!r}")
    return bytes(proto.SerializeToString())


def onnx_scores(blob: bytes, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    (probs,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.astype(np.float32)})
    return np.asarray(probs, dtype=np.float32)[:, 1]


def parity(model: Any, blob: bytes, x: npt.NDArray[np.float32]) -> float:
    """Largest |ONNX - scikit-learn| P(malicious) over ``x``."""
    return float(np.abs(onnx_scores(blob, x) - model.predict_proba(x)[:, 1]).max())


def explanation(model: Any, x: npt.NDArray[np.float32]) -> tuple[list[float], list[float],
                                                                  list[float]]:
    """A linear surrogate of the model's logit on standardised features.

    ``weight * (x - center) / scale`` then approximates each feature's push on the score,
    which is what the alert's top features rank by.
    """
    p = np.clip(model.predict_proba(x)[:, 1], 1e-6, 1 - 1e-6)
    logit = np.log(p / (1 - p))
    center = x.mean(axis=0).astype(np.float64)
    scale = x.std(axis=0).astype(np.float64)
    scale[scale < 1e-9] = 1.0
    z = (x - center) / scale
    ridge = Ridge(alpha=1.0).fit(z, logit)
    return ([round(float(v), 6) for v in ridge.coef_], [round(float(v), 6) for v in center],
            [round(float(v), 6) for v in scale])


def severity_cutoffs(benign: npt.NDArray[np.float64], threshold: float,
                     budget_fpr: float) -> dict[str, float]:
    """OCSF severity -> lowest score: Low at the budget threshold, then 10x, 100x, 1000x
    fewer benign events passing (estimated on out-of-fold benign scores)."""
    from models.evaluate import threshold_at_fpr

    out = {"Low": round(threshold, 6)}
    last = threshold
    for name, factor in (("Medium", 10), ("High", 100), ("Critical", 1000)):
        cut = max(threshold_at_fpr(benign, budget_fpr / factor), last)
        cut = min(cut, 0.9999)
        out[name] = round(max(cut, last), 6)
        last = out[name]
    return out


def _created() -> str:
    # SOURCE_DATE_EPOCH (reproducible builds) pins the date so a rebuild is byte-identical.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def publish(
    repo: Path, *, name: str, kind: str, model: Any, feature_names: list[str],
    threshold: float, cutoffs: dict[str, float], metrics: dict[str, float], learner: str,
    trained_on: list[str], attribution: list[str], description: str,
    sample: npt.NDArray[np.float32], model_card_md: str,
    extra_files: dict[str, bytes] | None = None, version: str = "1", feature_set: str = "",
) -> tuple[ModelVersion, float]:
    blob = onnx_bytes(model, len(feature_names))
    diff = parity(model, blob, sample)
    if diff > PARITY_TOL:
        raise RuntimeError(f"{name}: ONNX differs from scikit-learn by {diff:.2e}")
    weights, center, scale = explanation(model, sample)
    card = ModelCard(
        name=name, kind=kind, version=version, feature_names=feature_names,
        threshold=round(float(threshold), 6), severity_cutoffs=cutoffs,
        description=description, learner=learner, trained_on=trained_on,
        attribution=attribution, metrics={k: round(float(v), 6) for k, v in metrics.items()},
        created=_created(), feature_set=feature_set,
        explain_weights=weights, explain_center=center, explain_scale=scale,
    )
    files = {"MODEL_CARD.md": model_card_md.encode()}
    files.update(extra_files or {})
    published = publish_version(repo, card, blob, extra_files=files)
    _pin_same_width(repo / name, len(feature_names))
    return published, diff


def _pin_same_width(model_dir: Path, width: int) -> None:
    """Triton has one config.pbtxt per model, so one input width: when a new feature set
    changes the width, the configs name only the versions of that width (``latest: 2``
    would make Triton fail to load the older one). Older versions still serve in process."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from scorer.inference.repository import CARD, list_versions

    versions = list_versions(model_dir.parent, model_dir.name)
    same = [int(v) for v in versions
            if len(msgspec.json.decode((model_dir / v / CARD).read_bytes())["feature_names"]) == width]
    if len(same) == len(versions):
        return
    for path in (model_dir / "config.pbtxt", model_dir / "configs" / "cpu.pbtxt"):
        config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
        config.version_policy.specific.versions[:] = same[-2:]
        path.write_text(text_format.MessageToString(config))
