"""netflow_classifier: Stratosphere Zeek conn.logs + CIC-IDS2017 (improved) flows.

Split groups: each Stratosphere host file is one group (so its scores come from a model
that never saw that host), each CIC attack family is one group, CIC benign flows are
grouped by capture day. Stratosphere "Background" flows are unknown, not benign: dropped.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

from scorer.captures import LabeledEvent
from scorer.events.structs import EventKind

from .datasets import Dataset, build, data_dir, day
from .evaluate import Hgb, balanced_weights, budget_passed, ranking_metrics, rate
from .spec import Evaluation, Spec
from .tables import table

BUDGET_FPR = 0.01
LEARNER = Hgb(trees=150, leaves=15, min_samples_leaf=50)
ATTRIBUTION = [
    "Stratosphere Lab, CTU Prague: security-datasets-for-testing (Zeek conn.log, 2022), "
    "GPL-2.0; used for training only, no rows are shipped.",
    "CIC-IDS2017 (Sharafaldin, Habibi Lashkari, Ghorbani, ICISSP 2018), improved labels by "
    "Engelen, Rimmer, Joosen (WTMC 2021); CIC research-use terms; sample via ScubaInstructor/fuh.",
]


def labeller(item: LabeledEvent) -> tuple[int | None, str, str, str]:
    truth = item.malicious
    label = item.event.label or ""
    if item.event.source == "zeek":
        return (None if truth is None else int(truth)), f"strat:{item.capture}", \
            "stratosphere", label
    family = re.sub(r"_\d+$", "", item.capture)
    group = f"cic:{family}:{day(item.event.ts)}" if truth is False else f"cic:{family}"
    return (None if truth is None else int(truth)), group, "cic-ids2017", label


def dataset(features: str = "") -> Dataset:
    root = data_dir() / "netflow"
    files = [*root.glob("stratosphere-zeek/*.labeled"), *root.glob("cic-ids2017-improved/*.csv")]
    return build(EventKind.NETFLOW, files, labeller, version=features)


def weights(ds: Dataset) -> npt.NDArray[np.float64]:
    # Each (dataset, class) pair weighs the same: CIC is class-balanced by sampling and
    # Stratosphere is 70% scans; neither proportion is the world's.
    return balanced_weights(ds.source, ds.y)


def evaluate(ds: Dataset, oof: npt.NDArray[np.float64], folds: npt.NDArray[np.int64]) -> Evaluation:
    metrics: dict[str, float] = {}
    passed = budget_passed(ds.y, oof, folds, BUDGET_FPR)
    rows = []
    host_aucs = []
    for group in sorted(np.unique(ds.group[ds.source == "stratosphere"]).tolist()):
        m = ds.group == group
        r = ranking_metrics(ds.y[m], oof[m])
        host_aucs.append(r["roc_auc"])
        rows.append([f"unseen host {group.split(':')[1]}", r["roc_auc"], r["pr_auc"],
                     r["recall_at_fpr_1pct"], r["recall_at_fpr_0.1pct"],
                     rate(passed, m & (ds.y == 1)), rate(passed, m & (ds.y == 0))])
    for source in ("stratosphere", "cic-ids2017"):
        m = ds.source == source
        r = ranking_metrics(ds.y[m], oof[m])
        rows.append([f"all {source}", r["roc_auc"], r["pr_auc"], r["recall_at_fpr_1pct"],
                     r["recall_at_fpr_0.1pct"], rate(passed, m & (ds.y == 1)),
                     rate(passed, m & (ds.y == 0))])
        metrics.update({f"{source}_{k}": v for k, v in r.items()})
    r = ranking_metrics(ds.y, oof)
    metrics.update(r)
    metrics["unseen_host_roc_auc_min"] = min(host_aucs)
    metrics["recall_at_budget"] = rate(passed, ds.y == 1)
    metrics["fpr_at_budget"] = rate(passed, ds.y == 0)
    rows.append(["all", r["roc_auc"], r["pr_auc"], r["recall_at_fpr_1pct"],
                 r["recall_at_fpr_0.1pct"], metrics["recall_at_budget"], metrics["fpr_at_budget"]])
    main = table(["held out", "ROC-AUC", "PR-AUC", "recall@FPR1%", "recall@FPR0.1%",
                  "recall@budget", "FPR@budget"], rows)
    fam_rows = []
    cic_attack = (ds.source == "cic-ids2017") & (ds.y == 1)
    for group in sorted(np.unique(ds.group[cic_attack]).tolist()):
        m = ds.group == group
        fam_rows.append([group.split(":")[1], int(m.sum()), rate(passed, m)])
    fams = table(["unseen CIC attack family", "flows", "recall@budget (FPR 1%)"], fam_rows)
    units = {str(row[0]): float(row[2]) for row in fam_rows}
    return Evaluation(metrics, f"{main}\n\n{_stratosphere_classes(ds, passed)}\n\n{fams}", units)


def _stratosphere_classes(ds: Dataset, passed: npt.NDArray[np.bool_]) -> str:
    """Alerts per Stratosphere label: recall for the attack class, false-positive rate for each
    benign sub-class (the one place the data says *which* benign traffic trips the model)."""
    strat = ds.source == "stratosphere"
    rows = []
    for label in sorted(np.unique(ds.label[strat]).tolist()):
        m = strat & (ds.label == label)
        hosts = ", ".join(sorted(g.split(":")[1].removesuffix("-conn") for g in np.unique(ds.group[m]).tolist()))
        rows.append([label, "attack" if ds.y[m].any() else "benign", hosts, int(m.sum()), rate(passed, m)])
    return table(["Stratosphere label (held-out host)", "truth", "hosts", "flows",
                  "alerted at budget (recall / FPR)"], rows)


SPEC = Spec(
    kind="netflow",
    dataset=dataset,
    weights=weights,
    fit=LEARNER,
    learner=LEARNER.describe(),
    budget_fpr=BUDGET_FPR,
    evaluate=evaluate,
    description="P(malicious) of one bidirectional flow from Zeek/CICFlowMeter-common fields "
                "(volumes, ratios, port classes, TCP flags) and a per-source 60 s window.",
    attribution=ATTRIBUTION,
    card_notes="Per-flow labels. Stratosphere: Malicious=1, Benign=0, Background dropped "
               "(unknown). CIC: BENIGN=0, every attack class=1. Classes are reweighted so each "
               "(dataset, class) pair carries equal weight. Groups: Stratosphere host file, "
               "CIC attack family, CIC benign day; 5 group folds.",
)
