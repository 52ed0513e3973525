"""Group-split evaluation: out-of-fold scores, metrics, and thresholds for an alert budget.

Rows are split by *group* (host file, attack family, capture, scenario), never by row, so
every score used for a metric comes from a model that never saw that host/capture/scenario.
Alert-budget thresholds are chosen on benign scores of the *other* folds and applied to the
held-out fold, so the reported recall at a budget is not tuned on the rows it is measured on.

The metrics and the budget threshold are the core's (:mod:`scorer.lifecycle.quality`, what
``scorer models validate`` judges by), so cards and verdicts report the same numbers; they
are part of this module's API too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier

from scorer.lifecycle.quality import SEED, cap_per_key, ranking_metrics, recall_at_fpr, threshold_at_fpr

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Fit = Callable[[F32, npt.NDArray[np.int8], F64], Any]


def hgb(**overrides: Any) -> Fit:
    """A deterministic histogram gradient-boosting learner (fixed seed, no early stopping)."""
    params: dict[str, Any] = dict(max_iter=200, learning_rate=0.08, max_leaf_nodes=31,
                                  min_samples_leaf=40, l2_regularization=1.0,
                                  early_stopping=False, random_state=SEED)
    params.update(overrides)

    def fit(x: F32, y: npt.NDArray[np.int8], w: F64) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(**params).fit(x, y, sample_weight=w)

    return fit


@dataclass(frozen=True)
class Hgb:
    """:func:`hgb` of this size for any feature columns, and the card's words for it: one
    set of numbers for both, so the card cannot describe another learner than the one fit."""

    trees: int
    leaves: int
    min_samples_leaf: int

    def __call__(self, names: tuple[str, ...]) -> Fit:
        return hgb(max_iter=self.trees, max_leaf_nodes=self.leaves, min_samples_leaf=self.min_samples_leaf)

    def describe(self) -> str:
        return (f"scikit-learn HistGradientBoostingClassifier ({self.trees} trees, {self.leaves} leaves), "
                "ONNX via skl2onnx")


def group_folds(groups: npt.NDArray[np.str_], n_splits: int) -> npt.NDArray[np.int64]:
    """Fold id per row; whole groups go to one fold, largest groups spread first."""
    names, counts = np.unique(groups, return_counts=True)
    load = np.zeros(n_splits)
    fold_of: dict[str, int] = {}
    for i in np.lexsort((names, -counts)).tolist():  # deterministic: size, then name
        f = int(np.argmin(load))
        fold_of[str(names[i])] = f
        load[f] += counts[i]
    return np.array([fold_of[str(g)] for g in groups], dtype=np.int64)


def oof_scores(
    fit: Fit, x: F32, y: npt.NDArray[np.int8], w: F64, folds: npt.NDArray[np.int64],
    train_mask: npt.NDArray[np.bool_] | None = None,
) -> F64:
    """P(malicious) of every row from the model trained without its fold.

    ``train_mask`` limits which rows may be trained on (e.g. a subsample); every row is
    scored.
    """
    train_mask = np.ones(len(y), bool) if train_mask is None else train_mask
    out = np.zeros(len(y))
    for f in np.unique(folds).tolist():
        held = folds == f
        tr = train_mask & ~held
        model = fit(x[tr], y[tr], w[tr])
        out[held] = model.predict_proba(x[held])[:, 1]
    return out




def budget_passed(
    y: npt.NDArray[np.int8], s: F64, folds: npt.NDArray[np.int64], fpr: float,
    benign: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.bool_]:
    """Which rows alert when each fold's threshold comes from the other folds' benign rows.

    ``benign`` says which rows count as benign for the budget (default ``y == 0``).
    """
    benign = (y == 0) if benign is None else benign
    passed = np.zeros(len(y), bool)
    for f in np.unique(folds).tolist():
        held = folds == f
        thr = threshold_at_fpr(s[benign & ~held], fpr)
        passed[held] = s[held] >= thr
    return passed


def rate(mask: npt.NDArray[np.bool_], where: npt.NDArray[np.bool_]) -> float:
    return float(mask[where].mean()) if where.any() else float("nan")






def balanced_weights(*keys: npt.NDArray[Any]) -> F64:
    """Weights giving every distinct key combination the same total weight."""
    joined = np.array(["\x1f".join(map(str, t)) for t in zip(*keys, strict=True)])
    _, inverse, counts = np.unique(joined, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return np.asarray(w * len(w) / w.sum(), dtype=np.float64)


__all__ = [
    "F32",
    "F64",
    "SEED",
    "Fit",
    "balanced_weights",
    "budget_passed",
    "cap_per_key",
    "group_folds",
    "hgb",
    "oof_scores",
    "ranking_metrics",
    "rate",
    "recall_at_fpr",
    "threshold_at_fpr",
]
