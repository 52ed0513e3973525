"""EDR: the model alone, the Sigma rules alone, and both (fused), on the same rows.

The service raises an alert when the model's score passes the card's threshold **or** a
rule of level high or critical fired (``scorer.alerts.decide.RULE_ALERT_LEVELS``) that the
pack's tuning leaves alerting. Rules are not trained, so "rules alone" needs no folds: an
event alerts when one of those rules is among its hits. Two ways to set the model's threshold beside the rules, both
from the *other* folds' benign (OTRF) events:

- **one shared budget** (shipped, :func:`fused_threshold`, the goal's accounting): the
  rules' alerts are counted first and the model gets what they leave; when the rules alone
  use up the budget the model adds nothing (:data:`NEVER`). The pack's tuning
  (models/edr_rule_tuning.py) keeps the rules that alert alone to about half the budget.
- **model on what the rules spare** (:func:`spared_threshold`): the model gets its own
  budget on the events no alerting rule fired on, on top of the rules; total alerts are at
  most the rules' plus the budget.

The shipped threshold aims *below* the goal's budget (a margin, models/edr_eval.py
``TARGET_FPR``): a threshold chosen on some groups' background passes more on groups whose
background those do not predict. The report says what the procedure gives where it was not
chosen: each fold's threshold from the other folds only, the alert rate per fold.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from scorer.features import feature_set
from scorer.profiles.join import NoProfiles

from .datasets import Dataset
from .evaluate import budget_passed, rate, threshold_at_fpr
from .tables import table

B = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
ALERT_LEVELS = ("rule_high", "rule_critical")  # scorer.alerts.decide.RULE_ALERT_LEVELS
NEVER = 1.0  # the highest threshold a card can hold: the model alerts only at a score of 1
CURVE = (0.25, 0.5, 1.0, 2.0)  # model budgets (per 1,000) on top of the rules


def rule_alerts(ds: Dataset, alerting: frozenset[str] | None = None) -> B | None:
    """Per row: a rule that alerts alone fired (None when the rows carry no rule columns).

    ``alerting``: those rules' ids (default: the training pack's high and critical rules its
    tuning leaves alerting, :attr:`TrainingRules.alerting`), read from the rows' hits; rows
    built before hits were kept fall back to the level columns (no tuning)."""
    names = feature_set("edr", "v3", NoProfiles()).names
    if ds.X.shape[1] != len(names):
        return None
    if ds.hits is not None:
        if alerting is None:
            from .edr import training_rules

            alerting = training_rules().alerting
        fired = {h: any(i in alerting for i in h.split("|")) for h in np.unique(ds.hits).tolist()}
        return np.array([fired[h] for h in ds.hits.tolist()], dtype=bool)
    cols = [names.index(n) for n in ALERT_LEVELS]
    alerts: B = ds.X[:, cols].sum(axis=1) > 0
    return alerts


def spared_threshold(scores: F64, rules: B, budget: float) -> float:
    """The model threshold passing ``budget`` of the benign events no alerting rule fired on."""
    return threshold_at_fpr(scores[~rules], budget)


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


Policy = Callable[[F64, B, float], float]


def fold_thresholds(s: F64, folds: I64, budget: float, benign: B, rules: B,
                    policy: Policy = fused_threshold) -> dict[int, float]:
    """Per fold, the model threshold ``policy`` chooses on the *other* folds' benign rows."""
    out = {}
    for f in np.unique(folds).tolist():
        other = benign & (folds != f)
        out[int(f)] = policy(s[other], rules[other], budget)
    return out


def fused_passed(y: npt.NDArray[np.int8], s: F64, folds: I64, budget: float, benign: B, rules: B,
                 policy: Policy = fused_threshold) -> B:
    """Which rows alert (model or rules) when each fold's model threshold comes from the other
    folds' benign rows under ``policy``."""
    passed = rules.copy()
    for f, threshold in fold_thresholds(s, folds, budget, benign, rules, policy).items():
        held = folds == f
        passed[held] |= s[held] >= threshold
    return passed


def comparison(ds: Dataset, oof: F64, folds: I64, budget: float, weak: B, tactic_of: Callable[[str], str],
               random_recall: Callable[[I64, float], float], risk: B | None = None,
               target: float | None = None, card: float | None = None) -> tuple[str, dict[str, float]]:
    """Tables and metrics: model / rules / fused side by side, per tactic, per half, per fold,
    and the curve.

    Every budget counts the OTRF events not labelled attack (``~weak``), the goal's
    accounting; ``risk``: the per-host risk alerts (models/edr_risk.py), counted before the
    model in the shipped decision; ``target``: what the shipped threshold aims at (default
    ``budget``: no margin); ``card``: the shipped threshold itself, chosen on every fold's
    scores, whose row is therefore in-sample."""
    rules = rule_alerts(ds)
    assert rules is not None
    target = budget if target is None else target
    otrf, sigma = ds.source == "otrf", ds.source == "sigma"
    benign = otrf & ~weak
    captures, sizes = np.unique(ds.capture[otrf], return_counts=True)
    per_capture = [otrf & (ds.capture == c) for c in captures.tolist()]
    fired = rules if risk is None else rules | risk  # what alerts before the model
    margin = f" aimed at {1000 * target:g} / 1,000" if target != budget else ""

    def detected(passed: B) -> B:
        return np.array([passed[m].any() for m in per_capture])

    variants = {
        "model": ("model alone (threshold at the budget)", budget_passed(ds.y, oof, folds, budget, benign=benign)),
        "rules": ("rules alone (a high/critical rule the tuning leaves alerting fired)", rules),
        "spared": ("model or rules, model given the budget again on the events the rules spare",
                   fused_passed(ds.y, oof, folds, budget, benign, rules, spared_threshold)),
        "fused": ("model or rules within one shared budget" + margin + ("" if risk is not None else " (shipped)"),
                  fused_passed(ds.y, oof, folds, target, benign, rules, fused_threshold)),
    }
    if risk is not None:
        shipped = variants.pop("fused")
        variants["fused_norisk"] = shipped
        variants["risk"] = ("rules and per-host risk alerts (no model threshold)", fired)
        if target != budget:
            variants["fused_nomargin"] = ("model, rules and risk within one shared budget, aimed at the budget itself",
                                          fused_passed(ds.y, oof, folds, budget, benign, fired, fused_threshold))
        variants["fused"] = (f"**model, rules and per-host risk within one shared budget{margin} (shipped)**",
                             fused_passed(ds.y, oof, folds, target, benign, fired, fused_threshold))
    if card is not None:
        with_risk = " and risk" if risk is not None else ""
        variants["card"] = (f"the card's threshold {card:.6f} on every fold, rules{with_risk} (in sample: chosen on "
                            "these scores)", fired | (oof >= card))
    rows, metrics, found = [], {}, {}
    for key, (name, passed) in variants.items():
        hit = found[key] = detected(passed)
        p, p_unlabelled = rate(passed, otrf), rate(passed, benign)
        rows.append([name, f"{int(hit.sum())} / {len(hit)} ({hit.mean():.1%})", f"{random_recall(sizes, p):.1%}",
                     f"{1000 * p:.2f}", f"{1000 * p_unlabelled:.2f}", f"{rate(passed, sigma):.3f}"])
        metrics.update({f"{key}_capture_recall": float(hit.mean()), f"{key}_alerts_per_1000_otrf": 1000 * p,
                        f"{key}_alerts_per_1000_unlabelled": 1000 * p_unlabelled,
                        f"{key}_sigma_recall": rate(passed, sigma)})
    main = table(["decision", "captures detected", "random at that rate", "alerts / 1,000 OTRF events",
                  "alerts / 1,000 not labelled attack", "Sigma recall (own rule removed)"], rows)
    curve = []
    for per_1000 in CURVE:
        passed = fused_passed(ds.y, oof, folds, per_1000 / 1000, benign, rules, spared_threshold)
        hit = detected(passed)
        curve.append([per_1000, f"{int(hit.sum())} ({hit.mean():.1%})", f"{1000 * rate(passed, otrf):.2f}",
                      f"{1000 * rate(passed, benign):.2f}"])
        metrics[f"fused_capture_recall_at_model_{per_1000:g}_per_1000"] = float(hit.mean())
    curve_table = table(["model budget on the spared events (per 1,000)", "captures detected",
                         "alerts / 1,000 OTRF events (rules + model)", "alerts / 1,000 not labelled attack"], curve)
    tactics = np.array([tactic_of(c) for c in captures.tolist()])
    per_tactic = [[t, int(m.sum())] + [f"{int(found[k][m].sum())} ({found[k][m].mean():.0%})"
                                       for k in ("model", "rules", "fused")]
                  for t in sorted(set(tactics.tolist())) for m in [tactics == t]]
    tactic_table = table(["tactic", "captures", "model alone", "rules alone", "fused (shipped)"], per_tactic)
    names = captures.tolist()
    # The development half of the groups chose the rule tuning, the risk policy and the shared
    # budget (models/halves.py's parity); the held-out half never did.
    groups, group_of = np.unique(ds.group, return_inverse=True)
    dev_rows = np.array([zlib.crc32(g.encode()) % 2 == 0 for g in groups.tolist()])[group_of]
    dev = np.array([bool(dev_rows[m][0]) for m in per_capture])
    half_rows = []
    for key, (name, passed) in variants.items():
        cells = []
        for h, rows_h in ((dev, dev_rows), (~dev, ~dev_rows)):
            cells += [f"{int(found[key][h].sum())} / {int(h.sum())}", f"{1000 * rate(passed, benign & rows_h):.2f}"]
        half_rows.append([name, *cells])
        metrics[f"{key}_capture_recall_held_out_half"] = float(found[key][~dev].mean())
        metrics[f"{key}_alerts_per_1000_unlabelled_held_out_half"] = 1000 * rate(passed, benign & ~dev_rows)
    half_table = table(["decision", "development half: captures", "per 1,000 not labelled attack",
                        "held-out half: captures", "per 1,000 not labelled attack"], half_rows)
    fold_table, fold_metrics = _per_fold(ds, folds, oof, target, benign, fired, variants["fused"][1],
                                         found["fused"], per_capture)
    metrics.update(fold_metrics)
    missed = [c for c, d in zip(names, found["fused"].tolist(), strict=True) if not d]
    model_only = [c for c, a, b in zip(names, found["model"].tolist(), found["rules"].tolist(), strict=True)
                  if a and not b]
    rules_only = [c for c, a, b in zip(names, found["rules"].tolist(), found["model"].tolist(), strict=True)
                  if a and not b]
    text = (f"{main}\n\n{curve_table}\n\n{tactic_table}\n\n"
            "Per half of the groups (the development half chose the rule tuning and the risk policy; "
            f"the held-out half never did):\n\n{half_table}\n\n"
            "The shipped procedure per fold: each fold's model threshold chosen on the other four folds' "
            f"events not labelled attack (rules and risk counted first), then applied to the fold:\n\n{fold_table}\n\n"
            f"Fused (shipped), missed ({len(missed)}): {', '.join(missed) or 'none'}\n\n"
            f"Detected by the model and not the rules ({len(model_only)}): {', '.join(model_only) or 'none'}\n\n"
            f"Detected by the rules and not the model ({len(rules_only)}): {', '.join(rules_only) or 'none'}")
    return text, metrics


def _per_fold(ds: Dataset, folds: I64, oof: F64, target: float, benign: B, fired: B, passed: B, found: B,
              per_capture: list[B]) -> tuple[str, dict[str, float]]:
    """The shipped decision fold by fold: captures, alert rates, the threshold the other folds gave."""
    thresholds = fold_thresholds(oof, folds, target, benign, fired, fused_threshold)
    fold_of = np.array([int(folds[m][0]) for m in per_capture])
    rows, rates = [], []
    for f, threshold in thresholds.items():
        held = folds == f
        where = benign & held
        groups, counts = np.unique(ds.group[where], return_counts=True)
        largest = ", ".join(f"{g} ({n})" for g, n in sorted(zip(groups.tolist(), counts.tolist(), strict=True),
                                                            key=lambda t: -t[1])[:2])
        r = 1000 * rate(passed, where)
        rates.append(r)
        caps = fold_of == f
        rows.append([f, f"{int(found[caps].sum())} / {int(caps.sum())}", int(where.sum()), largest,
                     f"{threshold:.6f}", f"{1000 * rate(fired, where):.2f}", f"**{r:.2f}**" if r > 1 else f"{r:.2f}"])
    header = ["fold", "captures detected", "events not labelled attack", "largest groups (events)",
              "threshold (other folds)", "rule and risk alerts / 1,000", "all alerts / 1,000"]
    metrics = {f"fused_alerts_per_1000_unlabelled_fold_{i}": r for i, r in enumerate(rates)}
    metrics["fused_alerts_per_1000_unlabelled_worst_fold"] = max(rates)
    return table(header, rows), metrics
