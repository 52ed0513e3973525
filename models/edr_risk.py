"""``python -m models.edr_risk``: the per-host risk policy (scorer/rules/risk.py), chosen on
the development half of the OTRF groups, checked once on the held-out half.

Each OTRF capture is replayed through :class:`scorer.rules.risk.HostRisk` in time order, a
fresh state per capture (captures were recorded months apart; the campaigns on one host are
separate recordings). A risk alert counts against the budget like any alert: on the event
that tipped its host over, background or not. Every policy of a small grid (window, points
per level, threshold, optionally a model-score floor worth points) is scored on the
development half by the captures the rules and risk alerts reach together while the risk
alerts stay within ``--share`` of the budget on that half's events not labelled attack; the
best (most captures, then fewest background alerts) is then run once on the held-out half.
With ``--oof`` (out-of-fold scores, :func:`save_oof`) the model counts too: the fused
decision, one shared budget on the development half's folds. ``--write FILE`` writes the
chosen policy as the YAML ``scorer rules package --risk FILE`` puts into a new rule pack
(``rule_repository/sigma_windows/risk.yml`` is the shipped pack's); ``--threshold`` judges the
policy of the training pack (its ``pack.json``) as it ships.
"""

from __future__ import annotations

import argparse
import itertools
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from scorer.rules.risk import HostRisk, RiskPolicy, write_risk

from .datasets import Dataset
from .tables import table

B = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]


def levels() -> dict[str, str]:
    """Rule id -> Sigma level, of the training pack."""
    from .edr import training_rules

    return {r.id: r.level for r in training_rules().engine.rules}


def risk_alerts(ds: Dataset, policy: RiskPolicy, rule_levels: dict[str, str], scores: F64 | None = None) -> B:
    """Per row: a risk alert (OTRF rows only; each capture a fresh state, in time order).

    Only rows with a rule hit (or a model score over the policy's floor) can change a host's
    risk, so only they are replayed."""
    if ds.hits is None or ds.host is None or ds.ts is None:
        raise ValueError("risk alerts need a dataset built with rule hits, hosts and times")
    active = (ds.source == "otrf") & (ds.hits != "")
    if scores is not None and policy.model_points > 0:
        active |= (ds.source == "otrf") & (scores >= policy.model_floor)
    rows = np.flatnonzero(active)
    rows = rows[np.lexsort((ds.ts[rows], ds.capture[rows]))]
    split = {h: tuple(h.split("|")) if h else () for h in np.unique(ds.hits[rows]).tolist()}
    hits = [split[h] for h in ds.hits[rows].tolist()]
    capture = ds.capture[rows]
    out = np.zeros(len(ds.y), bool)
    bounds = np.flatnonzero(capture[1:] != capture[:-1]) + 1
    for a, b in zip(np.r_[0, bounds].tolist(), np.r_[bounds, len(rows)].tolist(), strict=True):
        part = rows[a:b]
        risk = HostRisk(policy, rule_levels)
        out[part] = risk.observe(ds.host[part].tolist(), ds.ts[part], hits[a:b],
                                 None if scores is None else scores[part])
    return out


def grid(with_model: bool) -> Iterator[RiskPolicy]:
    """The candidate policies (points relative to a medium rule's 1)."""
    floors = (0.02, 0.05, 0.1, 0.2, 0.4) if with_model else (1.0,)
    for window, low, high, threshold, floor in itertools.product(
            (600.0, 1800.0, 3600.0, 4 * 3600.0), (0.0, 0.5, 1.0), (1.0, 2.0), (1.5, 2.0, 2.5, 3.0, 4.0, 5.0), floors):
        points = {"low": low, "medium": 1.0, "high": high, "critical": high}
        yield RiskPolicy(threshold, window, points, model_points=1.0 if with_model else 0.0, model_floor=floor)


def describe(p: RiskPolicy) -> str:
    pts = ", ".join(f"{k} {v:g}" for k, v in p.points.items())
    model = f", model >= {p.model_floor:g}: {p.model_points:g}" if p.model_points > 0 else ""
    return f"window {p.window_s:g} s, {pts}{model}, threshold {p.threshold:g}"


def save_oof(path: Path) -> None:
    """Out-of-fold scores of the shipped recipe (the 5-fold group split of models/spec.py)."""
    from scorer.features import feature_set

    from .edr import SPEC
    from .evaluate import group_folds, oof_scores

    ds = SPEC.dataset("v3")
    folds = group_folds(ds.group, SPEC.n_splits)
    oof = oof_scores(SPEC.fit(feature_set("edr", "v3").names), ds.X, SPEC.train_labels(ds), SPEC.weights(ds),
                     folds, SPEC.train_mask(ds))
    np.savez(path, oof=oof, folds=folds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.edr_risk", description=__doc__)
    parser.add_argument("--oof", type=Path,
                        help="npz of out-of-fold scores and folds (written with --save-oof); default: rules only")
    parser.add_argument("--save-oof", action="store_true", help="compute the out-of-fold scores into --oof and stop")
    parser.add_argument("--threshold", type=float,
                        help="with --oof: judge the training pack's policy (no choice) with the model alerting at this "
                             "fixed score, e.g. a card's threshold (default: choose a policy, thresholds per fold)")
    parser.add_argument("--write", type=Path,
                        help="write the chosen policy to this YAML file, for `scorer rules package --risk` "
                             "(default: print it only)")
    args = parser.parse_args(argv)
    from .edr import dataset, training_rules
    from .edr_eval import BUDGET_FPR, budget_benign
    from .edr_fusion import fused_passed, rule_alerts

    if args.save_oof:
        save_oof(args.oof)
        return 0
    ds = dataset("v3")
    rules = rule_alerts(ds)
    assert rules is not None
    benign, otrf = budget_benign(ds), ds.source == "otrf"
    dev = np.array([zlib.crc32(g.encode()) % 2 == 0 for g in ds.group.tolist()])  # models/halves.py's dev half
    scores = folds = None
    if args.oof is not None:
        with np.load(args.oof) as z:
            scores, folds = z["oof"], z["folds"]
    rl = levels()

    def outcome(policy: RiskPolicy | None, half: B) -> tuple[int, int, float, float, float]:
        """On ``half``: captures detected, captures, and per 1,000 not labelled attack the risk
        alerts, the rule and risk alerts, and all alerts (the model's too)."""
        risk = np.zeros(len(ds.y), bool) if policy is None else risk_alerts(ds, policy, rl, scores)
        passed = rules | risk
        if scores is not None and args.threshold is not None:
            passed = passed | (scores >= args.threshold)
        elif scores is not None and folds is not None:
            passed = fused_passed(ds.y, scores, folds, BUDGET_FPR, benign & half, passed & half) | passed
        caps = np.unique(ds.capture[otrf & half])
        found = sum(bool(passed[otrf & half & (ds.capture == c)].any()) for c in caps.tolist())
        where = benign & half
        risk_rate, fired_rate, all_rate = (1000 * float(a[where].mean()) for a in (risk, rules | risk, passed))
        return found, len(caps), risk_rate, fired_rate, all_rate

    header = ["", "captures", "risk alerts / 1,000 not labelled attack", "rule and risk alerts / 1,000",
              "all alerts / 1,000"]

    def row(label: str, o: tuple[int, int, float, float, float]) -> list[str]:
        return [label, f"{o[0]} / {o[1]}", *(f"{v:.3f}" for v in o[2:])]

    if args.threshold is not None:
        shipped = training_rules().risk
        halves = (("development", dev), ("held-out", ~dev), ("all", np.ones(len(dev), bool)))
        print(table(header, [row(f"{name}, {label}", outcome(policy, half)) for name, half in halves
                             for label, policy in (("without risk", None), ("the pack's risk", shipped))]))
        return 0
    # The choice: rules and risk alerts within the budget on the development half; then the most
    # development captures (fused with the model when scores are given), then the fewest alerts.
    base = outcome(None, dev)
    tried = []
    for policy in grid(scores is not None):
        o = outcome(policy, dev)
        if o[3] <= 1000 * BUDGET_FPR:
            tried.append((o, policy))
    tried.sort(key=lambda t: (t[0][0], -t[0][4]), reverse=True)  # stable: ties keep the grid's order
    rows = [row("none", base)] + [row(describe(p), o) for o, p in tried[:10]]
    print(table(["policy (development half)", *header[1:]], rows))
    if not tried:
        print("no policy within the budget")
        return 1
    best = tried[0][1]
    print(f"\nchosen: {describe(best)}\n")
    held = [row("without risk", outcome(None, ~dev)), row("with risk", outcome(best, ~dev))]
    print(table(["held-out half", *header[1:]], held))
    if args.write is not None:
        write_risk(args.write, best, f"Written by `python -m models.edr_risk{' --oof' if scores is not None else ''}` "
                   f"with the rules of {training_rules().describe()}.\n"
                   "Chosen on the development half of the OTRF groups (the most captures detected within the budget, "
                   "then the fewest alerts);\nthe held-out half read once after the choice:\n\n"
                   + table(["held-out half", *header[1:]], held))
        print(f"written to {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
