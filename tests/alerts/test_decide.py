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


def test_a_score_on_a_cut_off_earns_its_level_and_tied_cut_offs_the_later_listed() -> None:
    # Cut-offs and scores exact in float32 (0.9 is not: its float32 is below the cut-off).
    exact = card(severity_cutoffs={"Critical": 0.96875, "High": 0.875, "Medium": 0.75})
    scores = np.array([0.75, 0.87, 0.875, 0.96875, 1.0], np.float32)
    out = Decider(exact).decide(scores, np.zeros((5, 3), np.float32))
    assert [x.severity for x in out] == ["Medium", "Medium", "High", "Critical", "Critical"]
    # Two levels on one cut-off: the level listed higher in the sorted (most severe first)
    # order wins, as the per-level assignment did.
    tied = Decider(card(severity_cutoffs={"High": 0.9, "Medium": 0.9}))
    assert [x.severity for x in tied.decide(np.array([0.95], np.float32), np.zeros((1, 3), np.float32))] == ["High"]
    # A cut-off that is no number leaves the sorted search for the per-level comparisons.
    odd = Decider(card(severity_cutoffs={"High": float("nan"), "Medium": 0.7}))
    assert odd._cutoffs is None
    assert [x.severity for x in odd.decide(np.array([0.65, 0.95], np.float32), np.zeros((2, 3), np.float32))] == [
        "Low", "Medium"]


def test_rows_only_their_rules_raised_get_the_top_features_of_their_own_row() -> None:
    d = Decider(card(explain_weights=[1.0, -1.0, 2.0], explain_center=[0, 0, 0], explain_scale=[1, 1, 1]))
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 3)).astype(np.float32)
    scores = rng.uniform(0, 1, 12).astype(np.float32)
    forced = {1: "High", 4: "Critical", 7: "High", 11: "High"}
    out = {dec.row: dec for dec in d.decide(scores, x, forced)}
    for row in forced:
        alone = d._top_all(x, [row])[0]
        assert out[row].top_features == alone
        assert out[row].by_rule and out[row].by_model == (scores[row] >= d.threshold)


def test_strided_and_byte_swapped_scores_decide_as_contiguous_ones() -> None:
    """The C comparison takes NumPy's buffer of the scores; a vector NumPy lends none of (strided,
    reversed) is copied first, one of another byte order takes NumPy's path: the same decisions."""
    d = Decider(card(explain_weights=[1.0, 0.5, 2.0]))
    rng = np.random.default_rng(9)
    wide = rng.random(40).astype(np.float32)
    x = rng.random((20, 3)).astype(np.float32)
    expected = d.decide(np.ascontiguousarray(wide[::2]), x)
    assert expected and d.decide(wide[::2], x) == expected
    assert d.decide(wide[::2].astype(">f4"), x) == expected
    assert d.decide(wide[-2::-2][::-1], x) == expected
