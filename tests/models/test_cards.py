"""Severity levels: strictly increasing, and every level can be emitted by the Decider."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from models.edr_eval import random_capture_recall
from scorer.alerts.decide import Decider
from scorer.events import EventKind
from scorer.inference.repository import ModelCard, load_version
from scorer.lifecycle.export import severity_cutoffs

REPO = Path(__file__).parents[2] / "model_repository"


def _emitted(card: ModelCard) -> list[str]:
    """The severity the Decider gives the lowest float32 score at each cut-off, in level order."""
    levels = sorted(card.severity_cutoffs.items(), key=lambda kv: kv[1])
    scores = []
    for _, cut in levels:
        s = np.float32(cut)
        scores.append(s if s >= cut else np.nextafter(s, np.float32(1)))
    decider = Decider(card)
    features = np.zeros((len(scores), len(card.feature_names)), np.float32)
    return [d.severity for d in decider.decide(np.array(scores, np.float32), features)]


@pytest.mark.parametrize("kind", list(EventKind))
def test_shipped_severity_levels_are_increasing_and_each_is_emitted(kind: EventKind) -> None:
    card = load_version(REPO, f"{kind}_classifier").card
    cutoffs = card.severity_cutoffs
    assert list(cutoffs) == ["Low", "Medium", "High", "Critical"]
    values = list(cutoffs.values())
    assert all(a < b for a, b in pairwise(values)), cutoffs
    assert cutoffs["Low"] == card.threshold
    assert _emitted(card) == list(cutoffs)


def test_levels_beyond_the_benign_sample_are_spaced_up_to_the_top_attack_score() -> None:
    rng = np.random.default_rng(0)
    benign = rng.uniform(0, 0.9, 5000)  # 1000x below a 1% budget needs 100,000 benign scores
    attack = np.concatenate([rng.uniform(0.5, 0.99, 500), [0.99995]])
    cut = severity_cutoffs(benign, attack, 0.891, 0.01)
    values = list(cut.values())
    assert all(a < b for a, b in pairwise(values))
    assert cut["Medium"] == pytest.approx(float(np.quantile(benign, 0.999)), abs=1e-3)  # measured
    assert cut["Critical"] == 0.99995  # the strongest attack event reaches Critical


def test_a_cap_or_ties_no_longer_merge_levels() -> None:
    # Every top benign score tied at one value: the old rule gave High == Critical.
    benign = np.concatenate([np.zeros(99_000), np.full(1000, 0.99999)])
    cut = severity_cutoffs(benign, np.array([0.3, 1.0]), 0.2, 0.02)
    values = list(cut.values())
    assert all(a < b for a, b in pairwise(values))
    assert cut["Critical"] == 0.999999


def test_no_room_for_four_levels_is_an_error() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        severity_cutoffs(np.zeros(10), np.array([0.5]), 0.5, 0.01)


def test_random_capture_baseline_is_the_exact_formula() -> None:
    sizes = np.array([1, 10, 1000])
    p = 0.001
    expected = np.mean([1 - (1 - p) ** 1, 1 - (1 - p) ** 10, 1 - (1 - p) ** 1000])
    assert random_capture_recall(sizes, p) == pytest.approx(expected)
    assert random_capture_recall(sizes, 0.0) == 0.0
