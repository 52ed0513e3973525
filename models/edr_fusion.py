"""EDR: the model alone, the Sigma rules alone, and both (fused), on the same rows.

The service raises an alert when the model's score passes the card's threshold **or** a
rule of level high or critical fired (``scorer.alerts.decide.RULE_ALERT_LEVELS``). Rules
are not trained, so "rules alone" needs no folds: an event alerts when its v3 rule columns
count a high or critical hit. For the fused decision the budget is shared: on the other
folds' benign events, the rules' own alerts are counted first and the model's threshold is
set so that rules and model together stay within the budget (when the rules alone use it
up, the model adds nothing). The same rule on all out-of-fold benign scores gives the
shipped threshold (:func:`fused_threshold`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from models.datasets import Dataset
from models.evaluate import budget_passed, rate
from models.tables import table
from scorer.features import feature_set
from scorer.profiles.join import NoProfiles

B = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]
ALERT_LEVELS = ("rule_high", "rule_critical")  # scorer.alerts.decide.RULE_ALERT_LEVELS
NEVER = 1.0  # the highest threshold a card can hold: the model alerts only at a score of 1


def rule_alerts(ds: Dataset) -> B | None:
    """Per row: a high or critical rule fired (None when the rows carry no rule columns)."""
    names = feature_set("edr", "v3", NoProfiles()).names
    if ds.X.shape[1] != len(names):
        return None
    cols = [names.index(n) for n in ALERT_LEVELS]
    alerts: B = ds.X[:, cols].sum(axis=1) > 0
    return alerts


def fused_threshold(scores: F64, rules: B, budget: float) -> float:
    """The model threshold that leaves ``budget`` of these benign events alerting, rules
    and model together: what the rules do not use of the budget, on the events they spare."""
    n, r = scores.size, int(rules.sum())
    allowed = int(np.floor(budget * n + 1e-9)) - r  # events the model may still alert on
    if allowed < 1 or n == r:
        return NEVER
    ordered = np.sort(scores[~rules])[::-1]
    if allowed >= ordered.size:
        return float(ordered[-1])
    return min(float(np.nextafter(ordered[allowed], np.inf)), NEVER)


def fused_passed(y: npt.NDArray[np.int8], s: F64, folds: npt.NDArray[np.int64], budget: float,
                 benign: B, rules: B) -> B:
    """Which rows alert (model or rules) when each fold's threshold comes from the other folds."""
    passed = rules.copy()
    for f in np.unique(folds).tolist():
        held = folds == f
        other = benign & ~held
        passed[held] |= s[held] >= fused_threshold(s[other], rules[other], budget)
    return passed


def comparison(ds: Dataset, oof: F64, folds: npt.NDArray[np.int64], budget: float, weak: B,
               tactic_of: Callable[[str], str], random_recall: Callable[[npt.NDArray[np.int64], float], float],
               ) -> tuple[str, dict[str, float], dict[str, float]]:
    """Tables, metrics and per-capture fused detection: model / rules / fused side by side."""
    rules = rule_alerts(ds)
    assert rules is not None
    otrf, sigma = ds.source == "otrf", ds.source == "sigma"
    captures, sizes = np.unique(ds.capture[otrf], return_counts=True)
    variants = {
        "model alone (threshold at the budget)": budget_passed(ds.y, oof, folds, budget, benign=otrf),
        "rules alone (high/critical hit)": rules,
        "model or rules, model at its own budget": budget_passed(ds.y, oof, folds, budget, benign=otrf) | rules,
        "**fused: model or rules within the budget (shipped)**": fused_passed(ds.y, oof, folds, budget, otrf, rules),
    }
    rows, metrics, detected_by = [], {}, {}
    for (name, passed), key in zip(variants.items(), ("model", "rules", "either", "fused"), strict=True):
        hit = np.array([passed[otrf & (ds.capture == c)].any() for c in captures.tolist()])
        detected_by[key] = hit
        p = rate(passed, otrf)
        rows.append([name, f"{int(hit.sum())} / {len(hit)} ({hit.mean():.1%})", f"{random_recall(sizes, p):.1%}",
                     f"{1000 * p:.2f}", f"{1000 * rate(passed, otrf & ~weak):.2f}", f"{rate(passed, sigma):.3f}"])
        metrics.update({f"{key}_capture_recall": float(hit.mean()), f"{key}_alerts_per_1000_otrf": 1000 * p,
                        f"{key}_alerts_per_1000_unlabelled": 1000 * rate(passed, otrf & ~weak),
                        f"{key}_sigma_recall": rate(passed, sigma)})
    main = table(["decision", "captures detected", "random at that rate", "alerts / 1,000 OTRF events",
                  "alerts / 1,000 not labelled attack", "Sigma recall (own rule removed)"], rows)
    tactics = np.array([tactic_of(c) for c in captures.tolist()])
    per_tactic = []
    for t in sorted(set(tactics.tolist())):
        m = tactics == t
        per_tactic.append([t, int(m.sum())] + [f"{int(detected_by[k][m].sum())} ({detected_by[k][m].mean():.0%})"
                                               for k in ("model", "rules", "fused")])
    tactic_table = table(["tactic", "captures", "model alone", "rules alone", "fused (shipped)"], per_tactic)
    missed = [c for c, d in zip(captures.tolist(), detected_by["fused"].tolist(), strict=True) if not d]
    only = {k: [c for c, a, b in zip(captures.tolist(), detected_by[k].tolist(),
                                     detected_by["model" if k == "rules" else "rules"].tolist(), strict=True)
                if a and not b] for k in ("model", "rules")}
    text = (f"{main}\n\n{tactic_table}\n\nFused, missed: {', '.join(missed) or 'none'}\n\n"
            f"Only the model detects: {', '.join(only['model']) or 'none'}\n\n"
            f"Only the rules detect: {', '.join(only['rules']) or 'none'}")
    units = {c: float(d) for c, d in zip(captures.tolist(), detected_by["fused"].tolist(), strict=True)}
    return text, metrics, units
