"""EDR evaluation: captures detected at the alert budget, against chance, per tactic; and for
feature set v3 the model alone, the Sigma rules alone and both fused (models/edr_fusion.py).

A capture counts as detected when at least one of its events alerts. The budget is the
goal's: at most 1 alert per 1,000 OTRF events *not* labelled attack (by the capture metadata,
models/otrf_labels.py; Sigma events are all attack), so thresholds are chosen on those events
and alerts on labelled attack events do not spend it. The rate on every OTRF event is
reported beside it (an upper bound on false alerts: captures without usable metadata keep
their attack events among the events not labelled attack).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

from . import otrf_extra
from .datasets import Dataset, data_dir
from .edr_fusion import comparison, rule_alerts
from .edr_fusion import fused_threshold as shared_threshold
from .evaluate import budget_passed, ranking_metrics, rate
from .otrf_labels import row_labels
from .spec import Evaluation
from .tables import table

BUDGET_FPR = 0.001  # the goal: at most one alert per 1,000 events not labelled attack
# What the shipped threshold aims at, below the goal's budget: the threshold is chosen on the
# background of the captures at hand, and groups whose background those do not predict pass
# more (session 6: aimed at 1 per 1,000 with each fold's threshold from the other folds, the
# procedure passed 1.06 overall and 1.67 on the fold of the LSASS campaign hosts). Fixed
# before the retraining that reports it, not read off its results.
TARGET_FPR = 0.0008
CURVE_RATES = (0.5, 1.0, 2.0, 5.0)  # alert budgets (per 1,000 OTRF events) for the capture curve
RANDOM_NOTE = (
    "Random baseline: the share of captures that the same number of alerts would reach if they "
    "fell on OTRF events at random, mean over captures of 1 - (1 - p)^n (p the alert rate, n the "
    "capture's events). Large captures are detected by chance "
    "at any alert rate, so only the margin over this baseline is evidence of detection."
)

_WEAK: dict[str, tuple[npt.NDArray[np.bool_], npt.NDArray[np.str_]]] = {}


def weak_labels(ds: Dataset) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.str_]]:
    """Per row: metadata-derived attack flag (models/otrf_labels.py) and event type."""
    key = hashlib.sha256(ds.capture.tobytes() + "\n".join(ds.files).encode()).hexdigest()
    if key not in _WEAK:
        _WEAK[key] = row_labels(ds.files, ds.capture, ds.source,
                                data_dir() / "edr" / "otrf-security-datasets" / "_metadata")
    return _WEAK[key]




def budget_benign(ds: Dataset) -> npt.NDArray[np.bool_]:
    """The events the alert budget counts: OTRF events not labelled attack (the goal's words)."""
    flags: npt.NDArray[np.bool_] = (ds.source == "otrf") & ~weak_labels(ds)[0]
    return flags


def evaluate(ds: Dataset, oof: npt.NDArray[np.float64], folds: npt.NDArray[np.int64]) -> Evaluation:
    otrf = ds.source == "otrf"
    passed = budget_passed(ds.y, oof, folds, BUDGET_FPR, benign=budget_benign(ds))
    captures, sizes = np.unique(ds.capture[otrf], return_counts=True)
    detected = np.array([passed[otrf & (ds.capture == c)].any() for c in captures.tolist()])
    metrics = dict(ranking_metrics(ds.y, oof))
    metrics.update(
        capture_recall=float(detected.mean()),
        captures=float(len(captures)),
        alerts_per_1000_otrf_events=1000 * rate(passed, otrf),
        sigma_event_recall=rate(passed, ds.source == "sigma"),
    )
    metrics["capture_recall_random"] = random_capture_recall(sizes, rate(passed, otrf))
    weak = weak_labels(ds)[0]
    metrics["alerts_per_1000_unlabelled_otrf_events"] = 1000 * rate(passed, otrf & ~weak)
    metrics["weak_attack_event_recall"] = rate(passed, otrf & weak)
    per_capture = [int(passed[otrf & (ds.capture == c)].sum()) for c in captures.tolist()]
    rows = [["Sigma events (held-out rules) vs OTRF events", metrics.get("roc_auc"),
             metrics.get("pr_auc"), metrics.get("recall_at_fpr_1pct"),
             metrics.get("recall_at_fpr_0.1pct"), metrics["sigma_event_recall"],
             metrics["alerts_per_1000_otrf_events"]]]
    main = table(["set", "ROC-AUC", "PR-AUC", "recall@FPR1%", "recall@FPR0.1%",
                  "Sigma recall@budget", "alerts/1000 OTRF"], rows)
    cap = table(["OTRF attack captures (held out)", "value"], [
        ["captures", len(captures)],
        ["detected (>= 1 alert)", f"{detected.sum()} ({metrics['capture_recall']:.1%})"],
        ["if the same number of alerts fell at random", f"{metrics['capture_recall_random']:.1%}"],
        ["events per capture (min / median / max)", f"{sizes.min()} / {int(np.median(sizes))} / {sizes.max()}"],
        ["median alerts per capture", float(np.median(per_capture))],
        ["alerts per 1,000 OTRF events (upper bound on FP)",
         metrics["alerts_per_1000_otrf_events"]],
        [f"alerts per 1,000 OTRF events not labelled attack ({int((otrf & ~weak).sum())}; "
         "models/otrf_labels.py)", metrics["alerts_per_1000_unlabelled_otrf_events"]],
        [f"OTRF events labelled attack from metadata ({int((otrf & weak).sum())}) alerted",
         metrics["weak_attack_event_recall"]],
    ])
    curve, curve_metrics = _capture_curve(ds, oof, folds, otrf, sizes)
    metrics.update(curve_metrics)
    missed = [c for c, d in zip(captures.tolist(), detected.tolist(), strict=True) if not d]
    tail = "Missed captures: " + (", ".join(missed[:40]) or "none")
    text = (f"{main}\n\n{cap}\n\n{RANDOM_NOTE}\n\n{curve}\n\n"
            f"{_per_tactic(ds, captures, sizes, detected, rate(passed, otrf))}\n\n{tail}")
    if rule_alerts(ds) is not None:  # v3: the Sigma rules alone and fused with the model
        tactic_of = _tactics(ds)
        risk = shipped_risk(ds, oof)
        fused, fused_metrics = comparison(ds, oof, folds, BUDGET_FPR, weak, lambda c: tactic_of.get(c, "unknown"),
                                          random_capture_recall, risk, TARGET_FPR, _shared(ds, oof, risk))
        metrics.update(fused_metrics)
        text = f"### Model, rules and both (group split, out of fold)\n\n{FUSION_NOTE}\n\n{fused}\n\n" \
               f"### Model alone\n\n{text}"
    return Evaluation(metrics, text, {c: float(d) for c, d in zip(captures.tolist(), detected.tolist(),
                                                                    strict=True)})


FUSION_NOTE = (
    "An alert is raised when the model's score passes the card's threshold, when a Sigma rule of level high or "
    "critical that the pack's tuning leaves alerting fires (scorer.alerts.decide, scorer.rules.tuning), or when "
    "a host's risk reaches the pack's risk policy (distinct medium/low rules and model scores over a floor "
    "within a window, scorer.rules.risk; the policy ships in the pack's pack.json). "
    "Shipped: one shared budget counted on OTRF events not labelled attack, the goal's accounting: the "
    "rules' and the risk alerts count first and the model's threshold passes what they leave, aimed at "
    f"{1000 * TARGET_FPR:g} per 1,000 to keep a margin under the goal's {1000 * BUDGET_FPR:g} (models/edr_eval.py "
    "TARGET_FPR). Every row but the card's own is out of sample: scores out of fold, and each fold's threshold "
    "chosen on the other folds. \"Budget again on the spared events\" gives the model 1 in 1,000 of the events "
    "no alerting rule fired on, on top of the rules. Sigma "
    "regression events never see their own rule or its related rules (models/edr_rules.py), so their rule "
    "columns are what a technique no rule covers would show."
)


def _tactics(ds: Dataset) -> dict[str, str]:
    # OTRF files its atomic captures under windows/<tactic>/host/<capture>.zip; models/otrf_extra.py the rest.
    return {Path(f).stem: otrf_extra.tactic_of(Path(f)) for f in ds.files if "otrf" in f}


def shipped_risk(ds: Dataset, oof: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_] | None:
    """Per row: an alert of the training pack's per-host risk policy (None when the pack has
    no policy or the rows lack hosts and times)."""
    from .edr import training_rules
    from .edr_risk import levels, risk_alerts

    policy = training_rules().risk
    if policy is None or ds.host is None or ds.hits is None:
        return None
    return risk_alerts(ds, policy, levels(), oof)


def fused_threshold(ds: Dataset, oof: npt.NDArray[np.float64]) -> float | None:
    """The shipped threshold of a model with rule columns: one budget for rules, risk and
    model together, over the out-of-fold scores of the events the budget counts
    (:func:`budget_benign`); the rules that alert alone (after the pack's tuning) and the
    per-host risk alerts count first and the model passes what they leave of
    :data:`TARGET_FPR` (None without rule columns: the budget quantile)."""
    if rule_alerts(ds) is None:
        return None
    return _shared(ds, oof, shipped_risk(ds, oof))


def _shared(ds: Dataset, oof: npt.NDArray[np.float64], risk: npt.NDArray[np.bool_] | None) -> float:
    rules = rule_alerts(ds)
    assert rules is not None
    others = rules if risk is None else rules | risk
    benign = budget_benign(ds)
    return shared_threshold(oof[benign], others[benign], TARGET_FPR)


def random_capture_recall(sizes: npt.NDArray[np.int64], p: float) -> float:
    """Share of captures that alerts falling on events at random, at rate ``p``, would reach:
    the mean over captures of 1 - (1 - p)^n, n the capture's event count."""
    return float(np.mean(1.0 - (1.0 - p) ** sizes.astype(np.float64)))


def _capture_curve(ds: Dataset, oof: npt.NDArray[np.float64], folds: npt.NDArray[np.int64],
                   otrf: npt.NDArray[np.bool_], sizes: npt.NDArray[np.int64]) -> tuple[str, dict[str, float]]:
    rows, metrics = [], {}
    for per_1000 in CURVE_RATES:
        passed = budget_passed(ds.y, oof, folds, per_1000 / 1000, benign=budget_benign(ds))
        hit = [passed[otrf & (ds.capture == c)].any() for c in np.unique(ds.capture[otrf]).tolist()]
        actual = rate(passed, otrf)
        rows.append([per_1000, 1000 * actual, float(np.mean(hit)), random_capture_recall(sizes, actual),
                     rate(passed, ds.source == "sigma")])
        metrics[f"capture_recall_at_{per_1000:g}_per_1000"] = float(np.mean(hit))
    header = ["alert budget per 1,000 OTRF events", "alerts per 1,000 (held out)", "captures detected",
              "random baseline", "Sigma recall"]
    return table(header, rows), metrics


def _per_tactic(ds: Dataset, captures: npt.NDArray[np.str_], sizes: npt.NDArray[np.int64],
                detected: npt.NDArray[np.bool_], p: float) -> str:
    # OTRF files its atomic captures under windows/<tactic>/host/<capture>.zip.
    tactic_of = _tactics(ds)
    tactics = np.array([tactic_of.get(c, "unknown") for c in captures.tolist()])
    rows = []
    for t in sorted(set(tactics.tolist())):
        m = tactics == t
        techniques = {str(v) for v in np.unique(ds.label[np.isin(ds.capture, captures[m])]).tolist()}
        rows.append([t, int(m.sum()), len(techniques), f"{int(detected[m].sum())} ({detected[m].mean():.0%})",
                     f"{random_capture_recall(sizes[m], p):.0%}"])
    return table(["OTRF tactic (capture folder)", "captures", "techniques", "detected at budget",
                  "random baseline"], rows)
