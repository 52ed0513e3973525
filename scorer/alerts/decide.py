"""From calibrated scores to alert decisions: threshold, severity and top features.

The threshold and severity cut-offs come from the model card, where training chose them
for an alert budget; nothing here is tuned by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from scorer.inference.repository import ModelCard

# A detection rule of these Sigma levels raises an alert on its own, whatever the model
# scores; lower levels (hunting content, noisy by design) only inform the model's features.
RULE_ALERT_LEVELS = frozenset({"high", "critical"})

# OCSF severity_id by name (Detection Finding: 1 Informational ... 5 Critical).
SEVERITY_IDS = {"Informational": 1, "Low": 2, "Medium": 3, "High": 4, "Critical": 5}


class Decision(msgspec.Struct, frozen=True):
    """One alert to raise: which row, its score, severity and what pushed it up."""

    row: int
    score: float
    severity: str
    top_features: list[tuple[str, float, float]]  # (name, value, contribution)


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
        n = len(card.feature_names)
        self._weights = _vector(card.explain_weights, n, 0.0)
        self._center = _vector(card.explain_center, n, 0.0)
        scale = _vector(card.explain_scale, n, 1.0)
        self._scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
        self._names = list(card.feature_names)

    def decide(
        self, scores: npt.NDArray[np.float32], features: npt.NDArray[np.float32]
    ) -> list[Decision]:
        rows = np.flatnonzero(scores >= self.threshold)
        if rows.size == 0:
            return []
        alerted_scores = scores[rows].astype(np.float64)
        # Severity and the top features of every alerted row at once: per-row numpy calls
        # cost more than the arithmetic when a batch raises many alerts.
        level_idx = np.zeros(rows.size, dtype=np.int64)
        names = ["Low"]
        for name, cutoff in reversed(self._levels):
            names.append(name)
            level_idx[alerted_scores >= cutoff] = len(names) - 1
        top = self._top_all(features[rows])
        return [
            Decision(int(row), float(score), names[lvl], top[i])
            for i, (row, score, lvl) in enumerate(zip(rows.tolist(), alerted_scores.tolist(), level_idx.tolist(),
                                                       strict=True))
        ]

    def _top_all(self, x: npt.NDArray[np.float32]) -> list[list[tuple[str, float, float]]]:
        if not self._names or not self._weights.any():
            return [[] for _ in range(x.shape[0])]
        contrib = self._weights * (x - self._center) / self._scale
        k = min(self.top_k, contrib.shape[1])
        idx = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
        top_c = np.take_along_axis(contrib, idx, axis=1).round(6).tolist()
        top_v = np.take_along_axis(x, idx, axis=1).astype(np.float64).round(6).tolist()
        names = self._names
        return [
            [(names[j], v, c) for j, v, c in zip(ji, vi, ci, strict=True) if c > 0]
            for ji, vi, ci in zip(idx.tolist(), top_v, top_c, strict=True)
        ]


def _vector(values: Sequence[float], n: int, fill: float) -> npt.NDArray[np.float32]:
    if len(values) == n:
        return np.asarray(values, dtype=np.float32)
    return np.full(n, fill, dtype=np.float32)
