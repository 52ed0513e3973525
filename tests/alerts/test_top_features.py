"""A decision's top features by scorer.native._findings.top_features are those of the NumPy
reference (a stable argsort of every row): ties, NaN, infinities, zeros, negatives and
contributions that round to 0 included."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from scorer.alerts.decide import Decider
from scorer.inference.repository import ModelCard
from scorer.native import findings
from tests.support.native import use_native

pytestmark = [
    pytest.mark.skipif(not findings.built(), reason="scorer.native._findings is not built"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),  # the infinities and NaN are on purpose
]


def _decider(n: int, top_k: int, rng: np.random.Generator) -> Decider:
    weights = rng.choice([0.0, 1.0, -1.0, 0.5, 1e-9, 3.0], size=n).tolist()
    card = ModelCard(name="m", kind="siem", version="1", feature_names=[f"f{i}" for i in range(n)], threshold=0.5,
                     severity_cutoffs={"High": 0.9}, explain_weights=weights,
                     explain_center=rng.choice([0.0, 1.0, 0.25], size=n).tolist(),
                     explain_scale=rng.choice([1.0, 0.0, 2.0, 1e-30], size=n).tolist())
    return Decider(card, top_k=top_k)


def _features(rows: int, n: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    pool = np.array([0.0, 1.0, 1.0, 2.0, -1.0, np.nan, np.inf, -np.inf, 1e-7, 4e-7, 0.6931472, 3e38, 1e-40],
                    np.float32)
    x = rng.choice(pool, size=(rows, n)).astype(np.float32)
    noisy = rng.random((rows, n)) < 0.4
    x[noisy] = rng.normal(size=int(noisy.sum())).astype(np.float32)
    return x


@pytest.mark.parametrize("top_k", [0, 1, 3, 8])
def test_native_top_features_equal_numpy_s(top_k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(top_k)
    compared = shown = 0
    for n in (1, 2, 5, 40):
        decider = _decider(n, top_k, rng)
        x = _features(300, n, rng)
        rows = [*rng.permutation(300).tolist(), 0, 0, 299]  # any order, repeated
        with monkeypatch.context() as m:
            use_native(m, "0")
            reference = decider._top_all(x, rows)
        use_native(monkeypatch, "1")
        assert decider._top_all(x, rows) == reference
        compared += len(reference)
        shown += sum(map(len, reference))
    assert compared == 1212 and (shown > 300 or top_k == 0)


def test_decisions_with_native_top_features_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    decider = _decider(30, 3, rng)
    x = _features(500, 30, rng)
    scores = rng.random(500).astype(np.float32)
    forced = {i: "High" for i in range(0, 500, 7)}
    with monkeypatch.context() as m:
        use_native(m, "0")
        reference = decider.decide(scores, x, forced)
    use_native(monkeypatch, "1")
    assert decider.decide(scores, x, forced) == reference and len(reference) > 250


def test_thresholds_and_levels_are_numpy_s_at_their_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    # NumPy compares float32 scores with a Python float threshold in float32 (0.988221 rounds),
    # and the cut-offs (float64) with the scores widened: both sides of each edge, NaN, inf.
    cutoffs = {"Critical": 0.99, "High": 0.9, "Medium": 0.988221, "Tied": 0.9}
    card = ModelCard(name="m", kind="siem", version="1", feature_names=["a", "b"], threshold=0.988221,
                     severity_cutoffs=cutoffs, explain_weights=[1.0, 2.0])
    decider = Decider(card)
    edges = [np.float32(v) for v in (0.988221, 0.99, 0.9, 1.0, 0.0)]
    pool = [e for v in edges for e in (np.nextafter(v, np.float32(0)), v, np.nextafter(v, np.float32(2)))]
    scores = np.array([*pool, np.nan, np.inf, -np.inf], np.float32)
    x = np.ones((scores.size, 2), np.float32)
    with monkeypatch.context() as m:
        use_native(m, "0")
        reference = decider.decide(scores, x)
        forced_reference = decider.decide(scores, x, {0: "High", 3: "Critical"})
    use_native(monkeypatch, "1")
    assert decider.decide(scores, x) == reference and len(reference) > 5
    assert decider.decide(scores, x, {0: "High", 3: "Critical"}) == forced_reference
