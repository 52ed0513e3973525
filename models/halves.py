"""``python -m models.halves KIND dev|held-out COLUMNS... [--features v2|v3]``: feature-set
variants on half the groups.

Choosing profile columns on the same group split that reports them would tune on the test
split, so variants are compared on a *development* half of the groups (crc32 of the group
name even) and the chosen one is checked once on the *held-out* half (odd). ``COLUMNS`` is
``v1`` (no columns beyond v1), ``all`` (every column of ``--features`` beyond v1),
``all-PREFIX[-PREFIX...]`` (those, without the columns whose names start with a PREFIX) or a
comma-separated list of column names; each prints the kind's headline metrics (for EDR v3
also the rules-alone and fused ones, models/edr_fusion.py).
"""

from __future__ import annotations

import argparse
import zlib

import numpy as np

from scorer.features import feature_set

from .datasets import Dataset
from .evaluate import group_folds, oof_scores
from .train import KINDS, spec_of

HEADLINE = {"edr": ("capture_recall", "alerts_per_1000_otrf_events", "sigma_event_recall", "rules_capture_recall",
                    "rules_alerts_per_1000_otrf", "fused_capture_recall", "fused_alerts_per_1000_otrf",
                    "fused_alerts_per_1000_unlabelled"),
            "netflow": ("recall_at_budget", "fpr_at_budget", "roc_auc"),
            "siem": ("recall_at_budget", "fp_passed_at_budget", "macro_step_recall_at_budget", "roc_auc")}


def half(ds: Dataset, which: str) -> Dataset:
    """The rows of the development (``dev``) or ``held-out`` half of the groups."""
    parity = 0 if which == "dev" else 1
    return ds.subset(np.array([zlib.crc32(g.encode()) % 2 == parity for g in ds.group.tolist()]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.halves", description=__doc__)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("half", choices=("dev", "held-out"))
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--features", default="v2", choices=("v2", "v3"))
    args = parser.parse_args(argv)
    spec = spec_of(args.kind)
    names, v1 = feature_set(args.kind, args.features).names, feature_set(args.kind).names
    ds = half(spec.dataset(args.features), args.half)
    folds = group_folds(ds.group, spec.n_splits)
    for variant in args.variants:
        extra = columns(variant, names[len(v1):])
        cols = list(range(len(v1))) + [names.index(n) for n in extra]
        oof = oof_scores(spec.fit(tuple(names[i] for i in cols)), ds.X[:, cols], spec.train_labels(ds),
                         spec.weights(ds), folds, spec.train_mask(ds))
        m = spec.evaluate(ds, oof, folds).metrics
        print(f"{args.kind} {args.half} {variant}: " + ", ".join(f"{k} {m[k]:.4f}" for k in HEADLINE[args.kind]
                                                                   if k in m))
    return 0


def columns(variant: str, beyond_v1: tuple[str, ...]) -> list[str]:
    """The columns beyond v1 that ``variant`` names (see the module docstring)."""
    if variant == "v1":
        return []
    if variant == "all" or variant.startswith("all-"):
        drop = tuple(p for p in variant.split("-")[1:] if p)
        return [n for n in beyond_v1 if not (drop and n.startswith(drop))]
    return variant.split(",")


if __name__ == "__main__":
    raise SystemExit(main())
