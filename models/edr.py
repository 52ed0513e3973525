"""edr_classifier: SigmaHQ regression events (per-event positives) against OTRF captures.

Labels, deliberately:
- Sigma regression events are true positives of a detection rule: label 1, per event.
- OTRF atomic captures are labelled per capture only (one simulated technique, mostly
  ordinary background activity). Their events are trained as 0, a *weak* negative label:
  the few attack events inside each capture are label noise the learner must tolerate,
  and the score they still get is what makes a capture alert.
Evaluation follows the labels: Sigma events and OTRF events are split by rule / capture;
a capture counts as detected when at least one of its events alerts; every OTRF event
that alerts is counted against the budget (an upper bound on false alerts, since some of
those events are the attack itself).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from models.datasets import Dataset, build, data_dir
from models.evaluate import (
    balanced_weights,
    budget_passed,
    cap_per_key,
    hgb,
    ranking_metrics,
    rate,
)
from models.spec import Evaluation, Spec
from models.tables import table
from replay import LabeledEvent
from scorer.events.structs import EventKind

BUDGET_FPR = 0.001  # at most one alert per 1,000 benign events
CAPTURE_CAP = 1500  # OTRF events per capture used for training (all are scored)
ATTRIBUTION = [
    "OTRF Security-Datasets (Mordor), Open Threat Research Forge, MIT licence.",
    "SigmaHQ regression data and rules, Detection Rule License (DRL) 1.1: attribution to "
    "SigmaHQ and to each rule's author (listed in each rule's rule.yml/info.yml).",
]


def labeller(item: LabeledEvent) -> tuple[int | None, str, str, str]:
    if item.event.source == "sigma-regression":
        return 1, f"sigma:{item.capture}", "sigma", item.event.label or "malicious"
    if item.event.source == "otrf":
        return 0, f"otrf:{item.capture}", "otrf", item.capture_label or "attack:unknown"
    return None, "", "", ""


def dataset() -> Dataset:
    root = data_dir() / "edr"
    files = [*root.glob("otrf-security-datasets/**/*.zip"),
             *root.glob("sigma-regression/**/*.json")]
    return build(EventKind.EDR, files, labeller)


def train_mask(ds: Dataset) -> npt.NDArray[np.bool_]:
    return (ds.source == "sigma") | cap_per_key(np.where(ds.source == "otrf", ds.capture, ""),
                                                 CAPTURE_CAP)


def weights(ds: Dataset) -> npt.NDArray[np.float64]:
    return balanced_weights(ds.y)


def evaluate(ds: Dataset, oof: npt.NDArray[np.float64], folds: npt.NDArray[np.int64]) -> Evaluation:
    otrf = ds.source == "otrf"
    passed = budget_passed(ds.y, oof, folds, BUDGET_FPR, benign=otrf)
    captures = sorted(np.unique(ds.capture[otrf]).tolist())
    detected = [bool(passed[otrf & (ds.capture == c)].any()) for c in captures]
    metrics = dict(ranking_metrics(ds.y, oof))
    metrics.update(
        capture_recall=float(np.mean(detected)),
        captures=float(len(captures)),
        alerts_per_1000_otrf_events=1000 * rate(passed, otrf),
        sigma_event_recall=rate(passed, ds.source == "sigma"),
    )
    per_capture = [int(passed[otrf & (ds.capture == c)].sum()) for c in captures]
    rows = [["Sigma events (held-out rules) vs OTRF events", metrics.get("roc_auc"),
             metrics.get("pr_auc"), metrics["sigma_event_recall"],
             metrics["alerts_per_1000_otrf_events"]]]
    main = table(["set", "ROC-AUC", "PR-AUC", "Sigma recall@budget", "alerts/1000 OTRF"], rows)
    cap = table(["OTRF attack captures (held out)", "value"], [
        ["captures", len(captures)],
        ["detected (>= 1 alert)", f"{sum(detected)} ({metrics['capture_recall']:.1%})"],
        ["median alerts per capture", float(np.median(per_capture))],
        ["alerts per 1,000 OTRF events (upper bound on FP)",
         metrics["alerts_per_1000_otrf_events"]],
    ])
    missed = [c for c, d in zip(captures, detected, strict=True) if not d]
    tail = "Missed captures: " + (", ".join(missed[:40]) or "none")
    return Evaluation(metrics, f"{main}\n\n{cap}\n\n{tail}")


SPEC = Spec(
    name="edr_classifier",
    kind="edr",
    dataset=dataset,
    fit=hgb(max_iter=200, max_leaf_nodes=15, min_samples_leaf=20),
    budget_fpr=BUDGET_FPR,
    evaluate=evaluate,
    weights=weights,
    train_mask=train_mask,
    budget_benign=lambda ds: ds.source == "otrf",
    learner="scikit-learn HistGradientBoostingClassifier (200 trees, 15 leaves), ONNX via skl2onnx",
    description="P(malicious) of one Windows endpoint event (Sysmon/Security/PowerShell) from "
                "behaviour class, process lineage classes and command-line tradecraft tokens.",
    attribution=ATTRIBUTION,
    card_notes=(__doc__ or "").split("Labels, deliberately:", 1)[-1].strip(),
)
