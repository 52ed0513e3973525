"""``python -m models.compare_learners KIND|all [--max-train N] [--groups all|dev|held-out]``: learners by numbers.

Gradient-boosted trees (the shipped recipe), logistic regression and a small MLP, on the
same group folds, the same training rows, weights and labels as ``models.train``, scored
out of fold: ROC-AUC, PR-AUC and the kind's goal metric. Training rows are subsampled
deterministically to at most ``--max-train`` per fold-model (every positive kept while they
are rare, class weight totals preserved) so the MLP stays within minutes on two cores; the
trees therefore score slightly differently from the shipped card, which trains on all rows.

Linear and MLP inputs are ``sign(x) * log1p(|x|)`` then standardised (the features mix
counts and byte volumes spanning orders of magnitude; the trees need no scaling).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from scorer.features import feature_set

from .datasets import Dataset
from .evaluate import SEED, Fit, group_folds, oof_scores
from .halves import half
from .tables import table
from .train import KINDS, spec_of

MAX_TRAIN = 60_000
GOAL = {"netflow": ("unseen_host_roc_auc_min", "recall_at_budget", "fpr_at_budget"),
        "edr": ("capture_recall", "capture_recall_random", "alerts_per_1000_otrf_events"),
        "siem": ("recall_at_budget", "fp_passed_at_budget")}


def _signed_log(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    wide = x.astype(np.float64)
    out: npt.NDArray[np.float64] = np.sign(wide) * np.log1p(np.abs(wide))
    return out


def _scaled(estimator: Any) -> Fit:
    def fit(x: npt.NDArray[np.float32], y: npt.NDArray[np.int8], w: npt.NDArray[np.float64]) -> Any:
        pipe = make_pipeline(FunctionTransformer(_signed_log), StandardScaler(), estimator)
        last = pipe.steps[-1][0]
        return pipe.fit(x, y, **{f"{last}__sample_weight": w})

    return fit


LEARNERS: dict[str, Callable[[tuple[str, ...], str], Fit]] = {
    "gradient-boosted trees (shipped)": lambda names, kind: spec_of(kind).fit(names),
    "logistic regression (L2, C=1)": lambda names, kind: _scaled(LogisticRegression(C=1.0, max_iter=500)),
    "MLP (32 ReLU, Adam, 30 epochs)": lambda names, kind: _scaled(MLPClassifier(
        hidden_layer_sizes=(32,), alpha=1e-4, max_iter=30, random_state=SEED)),
}


def subsample(ds: Dataset, mask: npt.NDArray[np.bool_], y: npt.NDArray[np.int8], w: npt.NDArray[np.float64],
              cap: int) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """At most ``cap`` training rows; positives all kept while they are under a tenth of it;
    each class keeps the total weight it had in ``mask``."""
    if mask.sum() <= cap:
        return mask, w
    rng = np.random.default_rng(SEED)
    pos = mask & (y == 1)
    keep_pos = pos if pos.sum() <= cap // 10 else pos & (rng.random(len(y)) < cap / mask.sum())
    neg = mask & (y == 0)
    keep = keep_pos | (neg & (rng.random(len(y)) < (cap - keep_pos.sum()) / neg.sum()))
    w = w.copy()
    for cls in (keep_pos, keep & (y == 0)):
        full = mask & (y == int(cls is keep_pos))
        w[cls] *= w[full].sum() / max(w[cls].sum(), 1e-12)
    return keep, w


def compare(kind: str, cap: int, which: str = "all") -> str:
    spec = spec_of(kind)
    ds = spec.dataset("v1") if which == "all" else half(spec.dataset("v1"), which)
    names = feature_set(kind).names
    folds = group_folds(ds.group, spec.n_splits)
    y = spec.train_labels(ds)
    mask, w = subsample(ds, spec.train_mask(ds), y, spec.weights(ds), cap)
    rows = []
    for label, learner in LEARNERS.items():
        start = time.perf_counter()
        oof = oof_scores(learner(names, kind), ds.X, y, w, folds, mask)
        m = spec.evaluate(ds, oof, folds).metrics
        rows.append([label, m["roc_auc"], m["pr_auc"], *(m[g] for g in GOAL[kind]),
                     f"{time.perf_counter() - start:.0f}"])
    header = ["learner", "ROC-AUC", "PR-AUC", *GOAL[kind], "seconds"]
    return (f"### {kind} ({which} groups): {int(mask.sum())} training rows (of {int(spec.train_mask(ds).sum())}), "
            f"{spec.n_splits} group folds\n\n{table(header, rows)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.compare_learners", description=__doc__)
    parser.add_argument("kind", choices=[*KINDS, "all"])
    parser.add_argument("--max-train", type=int, default=MAX_TRAIN)
    parser.add_argument("--groups", choices=("all", "dev", "held-out"), default="all",
                        help="all groups, or one half of them (models.halves) to choose on dev and check on held-out")
    args = parser.parse_args(argv)
    for kind in KINDS if args.kind == "all" else (args.kind,):
        print(compare(kind, args.max_train, args.groups), "\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
