"""From a fitted classifier to a published model version: ONNX, explanations, card.

Training (``python -m models.train``) and ``scorer models package`` both publish through
here. It needs the ``train`` extra (scikit-learn, skl2onnx): the lifecycle imports it only
in the commands that convert a model.

The ONNX graph takes ``features`` FP32 ``[batch, n]`` and returns ``probabilities`` FP32
``[batch, 2]`` (no ZipMap), the scorer's tensor contract. Publishing refuses a graph whose
scores differ from scikit-learn's by more than 1e-5.
"""

from __future__ import annotations

import itertools
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
from scorer.inference.triton_config import pin_versions
from scorer.lifecycle import tree_export
from scorer.lifecycle.quality import threshold_at_fpr

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


# Medium, High, Critical: the budget's benign pass rate divided by these factors.
SEVERITY_FACTORS = (("Medium", 10), ("High", 100), ("Critical", 1000))
CUTOFF_STEP = 1e-6  # cut-offs are published with six decimals


def severity_cutoffs(benign: npt.NDArray[np.float64], attack: npt.NDArray[np.float64],
                     threshold: float, budget_fpr: float) -> dict[str, float]:
    """OCSF severity -> lowest score; strictly increasing, and attack events reach every level.

    Low is the budget threshold. Medium, High and Critical aim at 10x, 100x and 1000x fewer
    benign events passing, as quantiles of the out-of-fold benign scores. A quantile is kept
    only where it is a measurement and leaves a reachable level: the benign sample holds at
    least one event above that rate (rate x benign count >= 1), and the cut lies strictly
    above the previous level and below ``top``, the highest out-of-fold attack score (capped
    at 1 - 1e-6). From the first level where that fails, the remaining levels are spaced
    evenly in log-odds between the last kept level and ``top``: a cap or ties can no longer
    make two levels equal (which left Critical unreachable), and Critical is at most the
    score the strongest attack event reached.
    """
    top = _floor6(min(float(attack.max()) if attack.size else 1.0, 1.0 - CUTOFF_STEP))
    out = {"Low": round(threshold, 6)}
    last = out["Low"]
    for i, (name, factor) in enumerate(SEVERITY_FACTORS):
        rate = budget_fpr / factor
        cut = round(threshold_at_fpr(benign, rate), 6)
        if rate * benign.size < 1 or not last < cut < top:
            out.update(_log_odds_spaced(last, top, [n for n, _ in SEVERITY_FACTORS[i:]]))
            break
        out[name] = last = cut
    levels = list(out.values())
    if any(b <= a for a, b in itertools.pairwise(levels)):
        raise ValueError(f"severity levels {out} are not strictly increasing: the attack scores "
                         f"(top {top}) leave no room above the budget threshold")
    return out


def _floor6(x: float) -> float:
    # The inner round drops binary noise (0.999999 / 1e-6 is 999998.99...).
    return round(float(np.floor(round(x / CUTOFF_STEP, 3))) * CUTOFF_STEP, 6)


def _log_odds_spaced(low: float, top: float, names: list[str]) -> dict[str, float]:
    # Rounded down, so the last level never exceeds ``top`` and stays reachable.
    low = max(low, CUTOFF_STEP)
    lo, hi = np.log(low / (1 - low)), np.log(top / (1 - top))
    steps = lo + (hi - lo) * np.arange(1, len(names) + 1) / len(names)
    return {n: _floor6(float(1 / (1 + np.exp(-v)))) for n, v in zip(names, steps, strict=True)}


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
    gpu = tree_export.artefact_for(blob, sample, onnx_scores(blob, sample), threshold)  # nvForest's, checked
    if gpu is not None:
        files[tree_export.ARTEFACT] = gpu
    published = publish_version(repo, card, blob, extra_files=files)
    _pin_same_width(repo / name, len(feature_names))
    return published, diff


def _pin_same_width(model_dir: Path, width: int) -> None:
    """Triton has one config.pbtxt per model, so one input width: when a new feature set
    changes the width, the configs name only the versions of that width (``latest: 2``
    would make Triton fail to load the older one). Older versions still serve in process."""
    from scorer.inference.repository import CARD, list_versions

    versions = list_versions(model_dir.parent, model_dir.name)
    same = [int(v) for v in versions
            if len(msgspec.json.decode((model_dir / v / CARD).read_bytes())["feature_names"]) == width]
    if len(same) != len(versions):
        pin_versions(model_dir, same[-2:])
