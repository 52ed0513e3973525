"""Detection metrics on plain arrays (numpy only, so eval needs no scikit-learn).

Undefined ratios (precision with no alert, recall with no attack) are ``None``, not 0:
a report must not pass off "nothing to measure" as "measured zero".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
MAX_CURVE_POINTS = 400  # enough for a smooth plot; keeps report.json small


def ratio(num: float, den: float) -> float | None:
    return round(num / den, 6) if den else None


def binary(y: BoolArray, alerted: BoolArray) -> dict[str, Any]:
    """Confusion counts and precision/recall/F1 of alert decisions against the truth."""
    tp = int(np.sum(y & alerted))
    fp = int(np.sum(~y & alerted))
    fn = int(np.sum(y & ~alerted))
    tn = int(np.sum(~y & ~alerted))
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    f1 = (
        ratio(2 * precision * recall, precision + recall)
        if precision is not None and recall is not None
        else None
    )
    return {
        "events": int(y.size),
        "malicious": tp + fn,
        "benign": fp + tn,
        "prevalence": ratio(tp + fn, y.size),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "false_positive_rate": ratio(fp, fp + tn),
    }


def _thin(*arrays: FloatArray) -> list[list[float]]:
    """At most MAX_CURVE_POINTS points, always keeping both ends."""
    n = arrays[0].size
    idx = (
        np.unique(np.linspace(0, n - 1, min(n, MAX_CURVE_POINTS)).round().astype(int)) if n else []
    )
    return [[round(float(v), 6) for v in a[idx]] for a in arrays]


def _ranked(y: BoolArray, scores: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Cumulative TP and FP counts at each distinct score threshold, highest first."""
    order = np.argsort(-scores, kind="mergesort")
    s, t = scores[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(t)[last_of_tie].astype(np.float64)
    fps = (last_of_tie + 1 - tps).astype(np.float64)
    return tps, fps, s[last_of_tie].astype(np.float64)


def roc(y: BoolArray, scores: FloatArray) -> dict[str, Any] | None:
    """ROC curve and its area; None unless both classes are present."""
    pos, neg = int(y.sum()), int((~y).sum())
    if not pos or not neg:
        return None
    tps, fps, thresholds = _ranked(y, scores)
    tpr = np.r_[0.0, tps / pos]
    fpr = np.r_[0.0, fps / neg]
    fpr_t, tpr_t, thr_t = _thin(fpr, tpr, np.r_[np.inf, thresholds])
    return {
        "auc": round(float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)), 6),
        "fpr": fpr_t,
        "tpr": tpr_t,
        "thresholds": [t if np.isfinite(t) else None for t in thr_t],
    }


def pr(y: BoolArray, scores: FloatArray) -> dict[str, Any] | None:
    """Precision-recall curve and average precision (step-wise area, no interpolation)."""
    pos = int(y.sum())
    if not pos or pos == y.size:
        return None
    tps, fps, thresholds = _ranked(y, scores)
    precision = tps / (tps + fps)
    recall = tps / pos
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    r_t, p_t, thr_t = _thin(np.r_[0.0, recall], np.r_[1.0, precision], np.r_[np.inf, thresholds])
    return {
        "average_precision": round(ap, 6),
        "baseline": round(pos / y.size, 6),
        "recall": r_t,
        "precision": p_t,
        "thresholds": [t if np.isfinite(t) else None for t in thr_t],
    }


def distribution(values: FloatArray) -> dict[str, Any]:
    """Count and percentiles of a sample (empty: count 0 and nothing else)."""
    if not values.size:
        return {"n": 0}
    pct = np.percentile(values, [50, 90, 99, 99.9])
    return {
        "n": int(values.size),
        "min": round(float(values.min()), 3),
        "p50": round(float(pct[0]), 3),
        "p90": round(float(pct[1]), 3),
        "p99": round(float(pct[2]), 3),
        "p99.9": round(float(pct[3]), 3),
        "max": round(float(values.max()), 3),
        "mean": round(float(values.mean()), 3),
    }


def histogram(values: FloatArray, bins: int = 40, *, log: bool = False) -> dict[str, Any]:
    if not values.size:
        return {"edges": [], "counts": []}
    if log:
        lo = max(float(values.min()), 1e-3)
        edges = np.geomspace(lo, max(float(values.max()), lo * 10), bins + 1)
        counts, edges = np.histogram(np.clip(values, lo, None), edges)
    else:
        counts, edges = np.histogram(values, bins)
    return {"edges": [round(float(e), 6) for e in edges], "counts": counts.tolist()}
