"""How good a model version is on labelled rows: ranking metrics and alert-budget thresholds.

``scorer models validate`` judges a candidate by these, ``package`` sets thresholds with
them, and training (models/) reports the same numbers on its cards, so a card's metrics and
a verdict are comparable. scikit-learn (the ``train`` extra) is imported where a metric
needs it: the lifecycle commands that only move versions around run without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

SEED = 20240611
F64 = npt.NDArray[np.float64]


def threshold_at_fpr(benign: F64, fpr: float) -> float:
    """Lowest threshold that passes at most ``fpr`` of these benign scores."""
    if benign.size == 0:
        return 0.5
    ordered = np.sort(benign)[::-1]
    k = int(np.floor(fpr * ordered.size))
    if k >= ordered.size:
        return float(ordered[-1])
    return float(np.nextafter(ordered[k], np.inf))


def recall_at_fpr(y: npt.NDArray[np.int8], s: F64, fpr: float) -> float:
    from sklearn.metrics import roc_curve

    fp, tp, _ = roc_curve(y, s)
    ok = fp <= fpr
    return float(tp[ok].max()) if ok.any() else 0.0


def ranking_metrics(y: npt.NDArray[np.int8], s: F64) -> dict[str, float]:
    if len(np.unique(y)) < 2:
        return {}
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "recall_at_fpr_1pct": recall_at_fpr(y, s, 0.01),
        "recall_at_fpr_0.1pct": recall_at_fpr(y, s, 0.001),
        "positives": float((y == 1).sum()),
        "negatives": float((y == 0).sum()),
    }


def cap_per_key(key: npt.NDArray[Any], cap: int, seed: int = SEED) -> npt.NDArray[np.bool_]:
    """A deterministic subsample keeping at most ``cap`` rows per key."""
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(key), bool)
    for k in np.unique(key).tolist():
        idx = np.flatnonzero(key == k)
        if idx.size > cap:
            idx = rng.choice(idx, cap, replace=False)
        keep[idx] = True
    return keep
