"""``scorer models package``: a trained model -> a new version in the model repository.

Accepts an ONNX file, or (convenience) a scikit-learn, LightGBM or XGBoost classifier
saved with joblib/pickle, converted with skl2onnx through the exporter training uses too
(onnxmltools' converters registered for the boosters: same tensor names, no ZipMap, parity
with the native ``predict_proba`` checked). The result is what training publishes:
model.onnx, card.json (feature contract, threshold, severities, explanation weights,
golden-set metrics), MODEL_CARD.md, golden.npz, the trees' Treelite checkpoint and, where
tl2cgen and a C compiler are at hand, the same trees compiled (compiled_trees.so and its
manifest), SHA256SUMS, and the model's production and CPU configs (dynamic batching,
GPU/CPU instance groups) via ``publish_version``.

The threshold is the analyst budget: unless given, it is chosen so the new model alerts on
the same share of benign golden rows as production does, so a swap changes which events
alert, not how many.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from scorer.errors import ModelError
from scorer.inference import compiled_shipped
from scorer.inference.base import INPUT_NAME, OUTPUT_NAME
from scorer.inference.compiled_build import OPTIMIZE
from scorer.inference.repository import ModelCard, ModelVersion, list_versions, publish_version
from scorer.inference.triton_config import input_width
from scorer.lifecycle import tree_export
from scorer.lifecycle.contract import contract_names, feature_set_name, onnx_problems
from scorer.lifecycle.control import now_iso
from scorer.lifecycle.converters import register_gbm_converters
from scorer.lifecycle.golden import GOLDEN_FILE, GoldenSet
from scorer.lifecycle.quality import threshold_at_fpr
from scorer.lifecycle.validate import quality, scores
from scorer.supply import signing

EXPLAIN_ROWS = 20_000
_PICKLES = (".joblib", ".pkl", ".pickle")


@dataclass(frozen=True)
class PackageRequest:
    kind: str
    model_file: Path
    name: str
    golden: GoldenSet
    production: ModelVersion | None = None
    version: str = ""  # default: one above the highest version present
    threshold: float | None = None
    alert_rate: float | None = None  # share of benign golden rows allowed to alert
    description: str = ""
    feature_set: str = "v1"  # the feature set the model reads (scorer.features.FEATURE_SETS)


def onnx_from_file(path: Path, n_features: int, sample: npt.NDArray[np.float32]) -> tuple[bytes, str]:
    """(ONNX bytes, learner name) from an .onnx file or a pickled scikit-learn estimator."""
    if path.suffix.lower() == ".onnx":
        return path.read_bytes(), "ONNX"
    if path.suffix.lower() not in _PICKLES:
        raise ModelError(f"{path}: expected .onnx, or a scikit-learn model saved as {'/'.join(_PICKLES)}")
    try:
        import joblib  # scikit-learn's own persistence; plain pickles load through it too

        estimator = joblib.load(path)
    except (OSError, pickle.UnpicklingError, EOFError, ImportError) as exc:
        raise ModelError(f"{path}: cannot load the model: {exc}") from None
    learner = type(estimator).__name__
    if not hasattr(estimator, "predict_proba"):
        raise ModelError(f"{path}: {learner} has no predict_proba; the scorer needs P(malicious)")
    from scorer.lifecycle import export  # on use: it needs the train extra (skl2onnx, sklearn)

    convertible = register_gbm_converters()
    try:
        blob: bytes = export.onnx_bytes(estimator, n_features)
    except Exception as exc:  # skl2onnx raises bare RuntimeError/KeyError for unknown learners
        boosters = ", ".join(convertible) or "none: pip install '.[gbm]' (lightgbm, xgboost, onnxmltools)"
        raise ModelError(
            f"{path}: skl2onnx cannot convert {type(estimator).__module__}.{learner} ({exc}). "
            f"Boosters with registered converters: {boosters}; or export to ONNX yourself "
            "and package the .onnx file"
        ) from None
    diff = float(export.parity(estimator, blob, sample))
    if diff > export.PARITY_TOL:
        raise ModelError(f"{path}: ONNX scores differ from {learner}'s by {diff:.2e} (> {export.PARITY_TOL})")
    return blob, learner


class _OnnxClassifier:
    """predict_proba over an ONNX graph, for the exporter's explanation surrogate."""

    def __init__(self, blob: bytes) -> None:
        self.session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])

    def predict_proba(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        (probs,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, np.float32)})
        return np.asarray(probs, np.float32)


def next_version(repo: Path, name: str) -> str:
    versions = list_versions(repo, name)
    return str(int(versions[-1]) + 1) if versions else "1"


def package(repo: Path, req: PackageRequest) -> ModelVersion:
    fs = feature_set_name(req.feature_set)
    names = contract_names(req.kind, fs)
    golden = req.golden.select(names)  # what this model reads, kept with it
    gx, gy = golden.features, golden.labels
    blob, learner = onnx_from_file(req.model_file, len(names), gx[:EXPLAIN_ROWS])
    problems = onnx_problems(blob, len(names))
    if problems:
        raise ModelError(f"{req.model_file} does not fit the {req.kind} {fs} contract: " + "; ".join(problems))
    version = req.version or next_version(repo, req.name)
    if not version.isdigit():
        raise ModelError(f"version {version!r}: Triton versions are positive integers")
    if version in list_versions(repo, req.name):
        raise ModelError(f"{req.name} version {version} exists; versions are immutable, pick another")
    s = scores(blob, gx)
    benign = np.sort(s[gy == 0].astype(np.float64))
    rate = _alert_rate(req)
    from scorer.lifecycle import export  # on use: it needs the train extra (skl2onnx, sklearn)

    threshold = req.threshold if req.threshold is not None else _threshold_at(benign, rate)
    attack = s[gy == 1].astype(np.float64)
    try:
        cutoffs: dict[str, float] = export.severity_cutoffs(benign, attack, threshold, max(rate, 1e-6))
    except ValueError as exc:  # no room for four severity levels above the threshold
        raise ModelError(f"{req.model_file}: {exc}") from None
    weights, center, scale = export.explanation(_OnnxClassifier(blob), gx[:EXPLAIN_ROWS])
    metrics = {f"golden_{k}": round(v, 6) for k, v in quality(s, gy, threshold).items()}
    card = ModelCard(
        name=req.name, kind=req.kind, version=version, feature_names=list(names), feature_set=fs,
        threshold=round(float(threshold), 6), severity_cutoffs=cutoffs,
        description=req.description or f"{req.kind} classifier packaged from {req.model_file.name}",
        # Attribution carries over from production: a retrain of a kind uses its data family.
        learner=learner, trained_on=[], attribution=list(req.production.card.attribution) if req.production else [],
        metrics=metrics, created=now_iso(), explain_weights=weights, explain_center=center,
        explain_scale=scale,
    )
    card_md = _card_markdown(card, req, golden)
    # Triton has one config per model, so one input width for all its versions: a version of
    # another feature set (another width) must not rewrite it, or Triton could no longer
    # load the versions in production (at its next restart, or at the next explicit load).
    width = input_width(repo / req.name)
    extra = {GOLDEN_FILE: golden.to_bytes(), "MODEL_CARD.md": card_md.encode()}
    gpu = tree_export.artefact_for(blob, gx, s, threshold)  # nvForest's checkpoint, checked on the golden rows
    if gpu is not None:
        extra[tree_export.ARTEFACT] = gpu
    # The same trees compiled for this platform, listed (and signed) with the rest: a scorer
    # without a C compiler (the scorer image) loads it after compiled_shipped's checks.
    extra.update(compiled_shipped.library_files(gpu, OPTIMIZE))
    published = publish_version(repo, card, blob, extra_files=extra, configs=width in (None, len(names)))
    signing.sign_if_configured(published.path)  # SCORER_SIGNING__KEY set: SHA256SUMS signed
    return published


def _alert_rate(req: PackageRequest) -> float:
    if req.alert_rate is not None:
        return req.alert_rate
    if req.production is None:
        if req.threshold is not None:
            return 0.01  # only used to space the severity cut-offs
        raise ModelError("no production version to match: pass --threshold or --alert-rate")
    try:
        rows = req.golden.select(req.production.card.feature_names)
    except ModelError as exc:
        raise ModelError(f"cannot match production {req.production.version}'s alert rate ({exc}): "
                         "pass --threshold or --alert-rate, or a --golden with its columns too") from None
    prod = scores(req.production.onnx_path, rows.features)
    benign = prod[req.golden.labels == 0]
    return float((benign >= req.production.card.threshold).mean()) if benign.size else 0.01


def _threshold_at(benign_sorted: npt.NDArray[np.float64], rate: float) -> float:
    return float(min(max(threshold_at_fpr(benign_sorted, rate), 1e-6), 1.0))


def _card_markdown(card: ModelCard, req: PackageRequest, golden: GoldenSet) -> str:
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in sorted(card.metrics.items()))
    matched = req.production is not None and req.threshold is None and req.alert_rate is None
    how = f", chosen to match production version {req.production.version}" if matched and req.production else ""
    return (
        f"# {card.name} version {card.version}\n\n{card.description}\n\n"
        f"- kind: {card.kind}, feature set {card.feature_set} ({len(card.feature_names)} features)\n"
        f"- learner: {card.learner}\n- packaged: {card.created} from `{req.model_file.name}`\n"
        f"- threshold: {card.threshold:.6f} ({card.metrics.get('golden_alert_rate_benign', 0):.2%} of benign "
        f"golden rows alert{how})\n"
        f"- golden set: {golden.describe()}\n\n| golden metric | value |\n|---|---|\n{rows}\n"
    )
