"""From calibrated scores to alert decisions: threshold, severity and top features.

The threshold and severity cut-offs come from the model card, where training chose them
for an alert budget; nothing here is tuned by hand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from scorer.inference.repository import ModelCard
from scorer.native import findings

# A detection rule of these Sigma levels raises an alert on its own, whatever the model
# scores; lower levels (hunting content, noisy by design) only inform the model's features.
RULE_ALERT_LEVELS = frozenset({"high", "critical"})

_NATIVE_TOP_K = 64  # the most top features scorer.native._findings.top_features lists

# OCSF severity_id by name (Detection Finding: 1 Informational ... 5 Critical).
SEVERITY_IDS = {"Informational": 1, "Low": 2, "Medium": 3, "High": 4, "Critical": 5}


class Decision(msgspec.Struct, frozen=True):
    """One alert to raise: which row, its score, severity and what pushed it up."""

    row: int
    score: float
    severity: str
    top_features: list[tuple[str, float, float]]  # (name, value, contribution)
    # Who raised it: the model's score passed its threshold, a high/critical rule fired, or both.
    by_model: bool = True
    by_rule: bool = False


def rule_severity(levels: Iterable[str]) -> str | None:
    """The OCSF severity a row's rule hits earn on their own (None: they raise no alert).

    >>> rule_severity(["low", "high"]), rule_severity(["critical"]), rule_severity(["medium"])
    ('High', 'Critical', None)
    """
    alerting = [lvl for lvl in levels if lvl in RULE_ALERT_LEVELS]
    if not alerting:
        return None
    return "Critical" if "critical" in alerting else "High"


class Decider:
    """Turns a batch of scores into decisions using one model card.

    >>> card = ModelCard(name="m", kind="siem", version="1", feature_names=["a", "b"],
    ...                  threshold=0.5, severity_cutoffs={"High": 0.9, "Medium": 0.7})
    >>> d = Decider(card)
    >>> [(x.row, x.severity) for x in d.decide(np.array([0.2, 0.95, 0.6], np.float32),
    ...                                        np.zeros((3, 2), np.float32))]
    [(1, 'High'), (2, 'Low')]
    """

    def __init__(self, card: ModelCard, top_k: int = 3) -> None:
        self.card = card
        self.threshold = float(card.threshold)
        self.top_k = top_k
        # Highest cut-off first so the first match is the most severe level earned.
        self._levels = sorted(card.severity_cutoffs.items(), key=lambda kv: -kv[1])
        # The same levels lowest first: a score's level is the number of cut-offs it reaches
        # (one searchsorted for the batch); None where a cut-off is no number to sort by.
        self._level_names = ["Low", *(name for name, _ in reversed(self._levels))]
        cutoffs = np.array([cutoff for _, cutoff in reversed(self._levels)], dtype=np.float64)
        self._cutoffs = cutoffs if bool(np.all(cutoffs[1:] >= cutoffs[:-1])) else None
        n = len(card.feature_names)
        self._weights = _vector(card.explain_weights, n, 0.0)
        self._center = _vector(card.explain_center, n, 0.0)
        scale = _vector(card.explain_scale, n, 1.0)
        self._scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
        self._names = list(card.feature_names)
        self._explains = bool(self._names) and bool(self._weights.any())
        # NumPy compares float32 scores with the threshold in float32 when it fits one.
        self._f32 = math.isfinite(self.threshold) and abs(self.threshold) <= float(np.finfo(np.float32).max)
        self._native = self._cutoffs is not None and self._f32  # the C comparison's conditions but the scores'
        # The C calls' constant vectors as memoryviews: NumPy exports an array's buffer at ~3x the
        # cost of a view's, every call of every batch.
        self._views = None if self._cutoffs is None else (
            self._cutoffs.data, self._weights.data, self._center.data, self._scale.data)

    def decide(
        self, scores: npt.NDArray[np.float32], features: npt.NDArray[np.float32],
        forced: Mapping[int, str] | None = None,
    ) -> list[Decision]:
        """Rows whose score passes the threshold, and the rows of ``forced`` (row -> the
        severity its rule hits earned, :func:`rule_severity`) whatever their score; a row
        with both gets the more severe of the two."""
        rows, alerted_scores, levels = self._alerted(scores)
        names = self._level_names
        if not forced:
            if not rows:
                return []
            top = self._top_all(features, rows)
            return [Decision(row, score, names[lvl], top[i])
                    for i, (row, score, lvl) in enumerate(zip(rows, alerted_scores, levels, strict=True))]
        # The rows the model raised and those only their rules raised, merged in row order; the
        # top features of all of them in one pass (a pass per row cost ~8 us per alert on an
        # attack-heavy EDR stream).
        by_model = {row: (score, names[lvl]) for row, score, lvl in zip(rows, alerted_scores, levels, strict=True)}
        every = sorted(by_model.keys() | forced.keys())
        out: list[Decision] = []
        for row, row_top in zip(every, self._top_all(features, every), strict=True):
            model = by_model.get(row)
            rule = forced.get(row)
            if model is None:
                assert rule is not None
                out.append(Decision(row, float(scores[row]), rule, row_top, by_model=False, by_rule=True))
            elif rule is None:
                out.append(Decision(row, model[0], model[1], row_top))
            else:
                severity = max(model[1], rule, key=lambda name: SEVERITY_IDS.get(name, 0))
                out.append(Decision(row, model[0], severity, row_top, by_model=True, by_rule=True))
        return out

    def _alerted(self, scores: npt.NDArray[np.float32]) -> tuple[list[int], list[float], list[int]]:
        """The rows whose score passes the threshold, their scores, and how many cut-offs each reaches."""
        native = findings.module()
        if native is not None and self._native and scores.dtype is _FLOAT32:
            # In one C call: NumPy's comparisons (float32 with the threshold, float64 with the cut-offs).
            try:
                return native.alerted(scores, self.threshold, self._views[0])  # type: ignore[index,no-any-return]
            except ValueError:  # NumPy lends no C-contiguous buffer of a strided vector (no flags read per call)
                return native.alerted(np.ascontiguousarray(scores), self.threshold, self._views[0])  # type: ignore[index,no-any-return]
        rows = np.flatnonzero(scores >= self.threshold)
        if rows.size == 0:
            return [], [], []
        alerted_scores = scores[rows].astype(np.float64)
        # Severity of every alerted row at once: per-row numpy calls cost more than the arithmetic.
        if self._cutoffs is not None:
            level_idx = np.searchsorted(self._cutoffs, alerted_scores, side="right")
        else:
            level_idx = np.zeros(rows.size, dtype=np.int64)
            for i, (_, cutoff) in enumerate(reversed(self._levels), start=1):
                level_idx[alerted_scores >= cutoff] = i
        return rows.tolist(), alerted_scores.tolist(), level_idx.tolist()

    def _top_all(self, features: npt.NDArray[np.float32], rows: list[int]) -> list[list[tuple[str, float, float]]]:
        """The top features of ``features[rows]``, each row's."""
        if not self._explains:
            return [[] for _ in rows]
        k = min(self.top_k, features.shape[1])
        native = findings.module()
        if native is not None and features.dtype == np.float32 and k <= _NATIVE_TOP_K:
            # The same choice in one C pass per row: no sort of every feature, no tuple per cell,
            # no NumPy call per step (they cost more than the arithmetic at 50-record batches).
            _, weights, center, scale = self._views or (None, self._weights, self._center, self._scale)
            return native.top_features(  # type: ignore[no-any-return]
                np.ascontiguousarray(features), weights, center, scale, k, self._names, rows)
        x = features[rows]
        contrib = self._weights * (x - self._center) / self._scale
        idx = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
        at = np.arange(idx.shape[0])[:, None], idx  # take_along_axis's indexing, without its checks
        top_c = contrib[at].round(6).tolist()
        top_v = x[at].astype(np.float64).round(6).tolist()
        names = self._names
        return [
            [(names[j], v, c) for j, v, c in zip(ji, vi, ci, strict=True) if c > 0]
            for ji, vi, ci in zip(idx.tolist(), top_v, top_c, strict=True)
        ]


_FLOAT32 = np.dtype(np.float32)  # the dtype of float32 arrays in native byte order (another takes NumPy's path)


def _vector(values: Sequence[float], n: int, fill: float) -> npt.NDArray[np.float32]:
    if len(values) == n:
        return np.asarray(values, dtype=np.float32)
    return np.full(n, fill, dtype=np.float32)
