from __future__ import annotations

import numpy as np

from scorer.alerts.decide import Decider
from scorer.inference.repository import ModelCard


def card(**kw: object) -> ModelCard:
    base: dict[str, object] = dict(name="m", kind="siem", version="1", feature_names=["a", "b", "c"],
                                   threshold=0.6, severity_cutoffs={"Critical": 0.98, "High": 0.9, "Medium": 0.75})
    base.update(kw)
    return ModelCard(**base)  # type: ignore[arg-type]


def test_threshold_and_severity_levels() -> None:
    d = Decider(card())
    scores = np.array([0.59, 0.6, 0.8, 0.95, 0.99], np.float32)
    out = d.decide(scores, np.zeros((5, 3), np.float32))
    assert [(x.row, x.severity) for x in out] == [(1, "Low"), (2, "Medium"), (3, "High"), (4, "Critical")]


def test_top_features_are_those_pushing_up() -> None:
    d = Decider(card(explain_weights=[1.0, -1.0, 2.0], explain_center=[0, 0, 0], explain_scale=[1, 1, 1]))
    (dec,) = d.decide(np.array([0.9], np.float32), np.array([[1.0, 5.0, 3.0]], np.float32))
    assert [n for n, _, _ in dec.top_features] == ["c", "a"]
    assert dec.top_features[0][2] == 6.0
