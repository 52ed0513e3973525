"""siem_classifier: AIT Alert Data Set (Wazuh, Suricata, AMiner alerts, six scenarios).

Per-alert truth: ``event_label`` "-" is benign (including AIT's ``false_positive`` phase),
anything else is part of the attack. Each scenario is one group, so every reported score
comes from a model that never saw that scenario's network, hosts or timing. Stateful
features (per-host rule rate, first-seen) are computed over each full scenario in time
order before any subsampling; training then caps rows per (scenario, class, attack step)
so dirb's hundreds of thousands of 400-errors do not drown the rare steps.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scorer.captures import LabeledEvent
from scorer.events.structs import EventKind

from .datasets import Dataset, build, data_dir
from .evaluate import (
    Hgb,
    balanced_weights,
    budget_passed,
    cap_per_key,
    ranking_metrics,
    rate,
)
from .spec import Evaluation, Spec
from .tables import table

# The goal is at most 5% of false-positive alerts passed; the threshold aims at 4% because
# a threshold carried to an unseen scenario passes a little more than it did where chosen.
BUDGET_FPR = 0.04
CAP_PER_STEP = 4000
LEARNER = Hgb(trees=200, leaves=31, min_samples_leaf=40)
ATTRIBUTION = [
    "AIT Alert Data Set (AIT-ADS), Landauer, Skopik, Wurzenberger: 'Introducing a New Alert "
    "Data Set for Multi-Step Attack Analysis', CSET 2024; CC BY 4.0.",
]


def labeller(item: LabeledEvent) -> tuple[int | None, str, str, str]:
    truth = item.malicious
    scenario = item.capture.removesuffix("_alerts")
    return (None if truth is None else int(truth)), f"ait:{scenario}", "ait-ads", \
        item.event.label or "benign"


def dataset(features: str = "") -> Dataset:
    return build(EventKind.SIEM, sorted((data_dir() / "siem" / "ait-ads").glob("*.csv*")),
                 labeller, version=features)


def train_mask(ds: Dataset) -> npt.NDArray[np.bool_]:
    key = np.char.add(np.char.add(ds.group, "|"), ds.label)
    return cap_per_key(key, CAP_PER_STEP)


def weights(ds: Dataset) -> npt.NDArray[np.float64]:
    return balanced_weights(ds.group, ds.y)


def evaluate(ds: Dataset, oof: npt.NDArray[np.float64], folds: npt.NDArray[np.int64]) -> Evaluation:
    passed = budget_passed(ds.y, oof, folds, BUDGET_FPR)
    metrics = dict(ranking_metrics(ds.y, oof))
    metrics["recall_at_budget"] = rate(passed, ds.y == 1)
    metrics["fp_passed_at_budget"] = rate(passed, ds.y == 0)
    rows = []
    for group in sorted(np.unique(ds.group).tolist()):
        m = ds.group == group
        r = ranking_metrics(ds.y[m], oof[m])
        rows.append([group.split(":")[1], int((m & (ds.y == 1)).sum()),
                     int((m & (ds.y == 0)).sum()), *_ranking_cells(r),
                     rate(passed, m & (ds.y == 1)),
                     rate(passed, m & (ds.y == 0))])
    rows.append(["all", int((ds.y == 1).sum()), int((ds.y == 0).sum()), *_ranking_cells(metrics),
                 metrics["recall_at_budget"], metrics["fp_passed_at_budget"]])
    main = table(["unseen scenario", "attack alerts", "FP alerts", "ROC-AUC", "PR-AUC", "recall@FPR1%",
                  "recall@FPR0.1%", "recall@budget", "FP passed"], rows)
    steps = []
    recalls = []
    for step in sorted(np.unique(ds.label[ds.y == 1]).tolist()):
        m = (ds.label == step) & (ds.y == 1)
        recalls.append(rate(passed, m))
        steps.append([step, int(m.sum()), recalls[-1]])
    metrics["macro_step_recall_at_budget"] = float(np.mean(recalls))
    per_step = table(["attack step (event_label)", "alerts", "recall@budget"], steps)
    units = {str(row[0]): float(row[2]) for row in steps}
    return Evaluation(metrics, f"{main}\n\n{per_step}", units)


def _ranking_cells(r: dict[str, float]) -> list[float]:
    return [r.get(k, float("nan")) for k in ("roc_auc", "pr_auc", "recall_at_fpr_1pct", "recall_at_fpr_0.1pct")]


SPEC = Spec(
    kind="siem",
    dataset=dataset,
    weights=weights,
    train_mask=train_mask,
    fit=LEARNER,
    learner=LEARNER.describe(),
    n_splits=6,
    budget_fpr=BUDGET_FPR,
    evaluate=evaluate,
    description="P(alert belongs to an attack) for one IDS/HIDS/SIEM alert from rule-name "
                "tokens, source system, severity and per-host rate/novelty over 60 s.",
    attribution=ATTRIBUTION,
    card_notes=(__doc__ or "").split("\n\n", 1)[-1].strip(),
)
