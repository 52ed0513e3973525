"""Model, rules and both: the fused threshold shares one alert budget."""

from __future__ import annotations

import numpy as np

from models.datasets import Dataset
from models.edr_fusion import NEVER, fold_thresholds, fused_passed, fused_threshold, rule_alerts, spared_threshold
from models.evaluate import threshold_at_fpr
from scorer.events.structs import EventKind
from scorer.features import feature_set
from scorer.profiles.join import NoProfiles


def test_rules_use_their_share_first() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random(100_000)
    rules = np.zeros(100_000, bool)
    rules[:40] = True  # 0.4 per 1,000 from the rules
    thr = fused_threshold(scores, rules, 0.001)
    assert ((scores >= thr) | rules).sum() == 100  # 1 per 1,000 in all
    assert fused_threshold(scores, np.zeros(100_000, bool), 0.001) == threshold_at_fpr(scores, 0.001)
    many = np.zeros(100_000, bool)
    many[:150] = True  # the rules alone are over the budget: the model adds nothing
    assert fused_threshold(scores, many, 0.001) == NEVER
    spared = spared_threshold(scores, many, 0.001)  # the model's own budget on the events the rules spare
    assert (scores[~many] >= spared).sum() == 99 and ((scores >= spared) | many).sum() <= 150 + 100


def test_fused_passed_thresholds_come_from_other_folds() -> None:
    rng = np.random.default_rng(1)
    n = 60_000
    scores, folds = rng.random(n), np.repeat(np.arange(3), n // 3)
    rules = rng.random(n) < 0.0004
    benign = np.ones(n, bool)
    passed = fused_passed(np.zeros(n, np.int8), scores, folds, 0.001, benign, rules)
    assert passed[rules].all()
    spared = fused_passed(np.zeros(n, np.int8), scores, folds, 0.001, benign, rules, spared_threshold)
    for f in range(3):
        held = folds == f
        thr = fused_threshold(scores[~held], rules[~held], 0.001)
        np.testing.assert_array_equal(passed[held], (scores[held] >= thr) | rules[held])
        thr = spared_threshold(scores[~held], rules[~held], 0.001)
        np.testing.assert_array_equal(spared[held], (scores[held] >= thr) | rules[held])
    assert 0.0005 < passed.mean() < 0.0012 < spared.mean() < 0.0016


def test_rule_alerts_read_the_v3_rule_columns() -> None:
    names = feature_set("edr", "v3", NoProfiles()).names
    x = np.zeros((3, len(names)), np.float32)
    x[1, names.index("rule_high")] = 1
    x[2, names.index("rule_medium")] = 2
    empty = np.array(["a"] * 3)
    ds = Dataset(EventKind.EDR, x, np.zeros(3, np.int8), empty, empty, empty, empty, [])
    alerts = rule_alerts(ds)
    assert alerts is not None and alerts.tolist() == [False, True, False]
    v1 = Dataset(EventKind.EDR, x[:, :92], np.zeros(3, np.int8), empty, empty, empty, empty, [])
    assert rule_alerts(v1) is None


def test_rule_alerts_read_the_hits_and_honour_the_tuning() -> None:
    names = feature_set("edr", "v3", NoProfiles()).names
    x = np.zeros((4, len(names)), np.float32)
    x[[1, 2], names.index("rule_high")] = 1  # both rows carry a high hit; only one rule still alerts
    empty = np.array(["a"] * 4)
    hits = np.array(["", "loud", "quiet|low", "low"])
    ds = Dataset(EventKind.EDR, x, np.zeros(4, np.int8), empty, empty, empty, empty, [], hits)
    alerts = rule_alerts(ds, alerting=frozenset({"loud"}))
    assert alerts is not None and alerts.tolist() == [False, True, False, False]
    assert ds.subset(np.array([False, True, True, False])).hits is not None


def test_a_target_under_the_budget_passes_fewer_in_every_fold() -> None:
    """The shipped threshold's margin: each fold's threshold, from the other folds, aimed at
    0.8 per 1,000, passes fewer events than one aimed at the budget."""
    rng = np.random.default_rng(2)
    n = 60_000
    scores, folds = rng.random(n), np.repeat(np.arange(3), n // 3)
    rules, benign = rng.random(n) < 0.0002, np.ones(n, bool)
    full = fold_thresholds(scores, folds, 0.001, benign, rules)
    aimed = fold_thresholds(scores, folds, 0.0008, benign, rules)
    assert full.keys() == aimed.keys() == {0, 1, 2} and all(aimed[f] > full[f] for f in full)
    for f, thr in aimed.items():
        other = folds != f
        assert thr == fused_threshold(scores[other], rules[other], 0.0008)
    assert fused_passed(np.zeros(n, np.int8), scores, folds, 0.0008, benign, rules).mean() < 0.00085
