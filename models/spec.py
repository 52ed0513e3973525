"""What a model recipe declares, and the one training flow every kind runs through."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from scorer.features import feature_set
from scorer.lifecycle.export import publish, severity_cutoffs

from .compare import compare
from .datasets import Dataset, data_dir
from .evaluate import SEED, Fit, group_folds, oof_scores, threshold_at_fpr
from .profiles_v2 import section as profiles_section

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    metrics: dict[str, float]
    markdown: str  # tables for MODEL_CARD.md and docs/models.md
    # Recall per evaluation unit (capture / attack family / attack step): what a new
    # feature set newly detects or loses, next to what it costs in false positives.
    units: dict[str, float] = field(default_factory=dict)


@dataclass(kw_only=True)
class Spec:
    """A model recipe: data, labels for training, learner, evaluation and card text."""

    name: str = ""  # of the model; "" = <kind>_classifier
    kind: str
    dataset: Callable[[str], Dataset]  # feature-set version -> labelled rows
    fit: Callable[[tuple[str, ...]], Fit]  # the learner for these feature columns
    budget_fpr: float  # alert budget: share of benign events allowed through
    evaluate: Callable[[Dataset, npt.NDArray[np.float64], npt.NDArray[np.int64]], Evaluation]
    learner: str
    description: str
    attribution: list[str]
    card_notes: str
    n_splits: int = 5
    weights: Callable[[Dataset], npt.NDArray[np.float64]] = lambda ds: np.ones(len(ds.y))
    train_mask: Callable[[Dataset], npt.NDArray[np.bool_]] = lambda ds: np.ones(len(ds.y), bool)
    # Training labels may differ from evaluation truth (e.g. weak capture labels).
    train_labels: Callable[[Dataset], npt.NDArray[np.int8]] = lambda ds: ds.y
    budget_benign: Callable[[Dataset], npt.NDArray[np.bool_]] = lambda ds: ds.y == 0
    # The shipped threshold from the out-of-fold scores, when it is not the budget quantile of
    # the benign scores (EDR v3: detection rules share the budget); None = that quantile.
    threshold: Callable[[Dataset, npt.NDArray[np.float64]], float | None] = lambda ds, oof: None
    # What else the features were computed from, for the card's trained_on (EDR v3: the rule pack).
    provenance: Callable[[str], list[str]] = lambda features: []
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.name = self.name or f"{self.kind}_classifier"


def run(spec: Spec, repo: Path, version: str = "1", features: str = "v1") -> Evaluation:
    ds = spec.dataset(features)
    names = feature_set(spec.kind, features).names
    log.info("%s: %d rows, %d features (%s), %d groups", spec.name, len(ds.y), ds.X.shape[1], features,
             len(np.unique(ds.group)))
    folds = group_folds(ds.group, spec.n_splits)
    w, mask, y_train = spec.weights(ds), spec.train_mask(ds), spec.train_labels(ds)
    oof = oof_scores(spec.fit(names), ds.X, y_train, w, folds, mask)
    result = spec.evaluate(ds, oof, folds)
    if features not in ("", "v1"):
        result = _against_v1(spec, ds, folds, result, w, mask, y_train, features)
    model = spec.fit(names)(ds.X[mask], y_train[mask], w[mask])
    benign = oof[spec.budget_benign(ds)]
    shared = spec.threshold(ds, oof)
    threshold = threshold_at_fpr(benign, spec.budget_fpr) if shared is None else shared
    cutoffs = severity_cutoffs(benign, oof[ds.y == 1], threshold, spec.budget_fpr)
    rng = np.random.default_rng(SEED)
    sample = ds.X[np.sort(rng.choice(len(ds.y), min(20_000, len(ds.y)), replace=False))]
    trained_on = sorted({"/".join(Path(f).relative_to(data_dir()).parts[:2]) for f in ds.files})
    trained_on += spec.provenance(features)
    metrics = dict(result.metrics, threshold_budget_fpr=spec.budget_fpr)
    card_md = _card_markdown(spec, result, threshold, cutoffs, len(ds.y), features)
    evaluation = json.dumps({"metrics": metrics, "threshold": threshold, "cutoffs": cutoffs,
                             "units": result.units}, indent=2, sort_keys=True).encode()
    version_info, diff = publish(
        repo, name=spec.name, kind=spec.kind, model=model,
        feature_names=list(names), threshold=threshold, cutoffs=cutoffs,
        metrics=metrics, learner=spec.learner, trained_on=trained_on,
        attribution=spec.attribution, description=spec.description, sample=sample,
        model_card_md=card_md, extra_files={"evaluation.json": evaluation + b"\n"},
        version=version, feature_set="" if features == "v1" else features,
    )
    log.info("%s: published %s (ONNX parity %.1e)", spec.name, version_info.path, diff)
    return result


def _against_v1(spec: Spec, ds: Dataset, folds: npt.NDArray[np.int64], after: Evaluation,
                w: npt.NDArray[np.float64], mask: npt.NDArray[np.bool_],
                y_train: npt.NDArray[np.int8], features: str = "v2") -> Evaluation:
    """The same recipe on the same rows and folds with the v1 columns only: before/after."""
    v1 = feature_set(spec.kind).names
    x1 = ds.X[:, :len(v1)]  # v2 and v3 = the v1 columns first, then their own
    before = spec.evaluate(ds, oof_scores(spec.fit(v1), x1, y_train, w, folds, mask), folds)
    label = "with profiles" if features == "v2" else f"feature set {features}"
    table = compare(before.metrics, before.units, after.metrics, after.units, label)
    metrics = dict(after.metrics, **{f"v1_{k}": v for k, v in before.metrics.items()})
    return Evaluation(metrics, f"{after.markdown}\n\n{table}", after.units)


SEVERITY_RULE = (
    "Severity rule (scorer/lifecycle/export.py `severity_cutoffs`): Low is the budget threshold; Medium, "
    "High and Critical are the scores that 10x, 100x and 1000x fewer out-of-fold benign events "
    "reach, kept only where the benign sample can measure that rate and the cut lies strictly "
    "between the previous level and the highest out-of-fold attack score; from the first level "
    "where that fails, the remaining levels are spaced evenly in log-odds up to that attack "
    "score. Levels are strictly increasing and an attack event of the evaluation reached each one."
)


def _card_markdown(spec: Spec, result: Evaluation, threshold: float,
                   cutoffs: dict[str, float], rows: int, features: str) -> str:
    sev = ", ".join(f"{k} >= {v:.6f}" for k, v in cutoffs.items())
    attribution = "\n".join(f"- {a}" for a in spec.attribution)
    return (
        f"# {spec.name}\n\n{spec.description}\n\n"
        f"- learner: {spec.learner}\n- rows: {rows}\n- feature set: {features or 'v1'}\n"
        f"- threshold: {threshold:.6f} (alert budget: {spec.budget_fpr:.2%} of benign events,"
        f" chosen on out-of-fold benign scores)\n- severity: {sev}\n\n{SEVERITY_RULE}\n\n"
        f"## Labels and data\n\n{spec.card_notes}\n\n"
        f"## Evaluation (group split; every score from a model that never saw the group)\n\n"
        f"{result.markdown}\n\n{profiles_section(spec.kind, features)}## Attribution\n\n{attribution}\n"
    )
