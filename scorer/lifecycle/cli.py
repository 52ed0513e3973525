"""``scorer models package|validate|deploy|promote|rollback|list``: the offline commands
(package, validate) here; deploy, promote, rollback and list, which the rule packs under
``scorer rules`` share, in :mod:`scorer.lifecycle.control_commands`.

Exit codes: 0 done / passed; 1 validation failed or a scorer refused the change (with
``--wait``); 2 usage or model errors (``scorer: <why>`` on stderr, from scorer.cli).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import msgspec

from scorer.errors import KafkaUnavailable, ModelError
from scorer.features import FEATURE_SETS
from scorer.inference.repository import list_versions, load_version
from scorer.inference.triton_config import input_width
from scorer.lifecycle import golden as goldens
from scorer.lifecycle import listing, ops
from scorer.lifecycle.contract import DEFAULT_FEATURE_SET
from scorer.lifecycle.control_commands import change, change_args, context, list_args
from scorer.lifecycle.package import PackageRequest, package
from scorer.lifecycle.rulepacks import pack_of
from scorer.lifecycle.transitions import current_production
from scorer.lifecycle.validate import Margins, Verdict, validate

KINDS = ("netflow", "edr", "siem")


def register(sub: Any) -> None:
    models = sub.add_parser("models", help="model lifecycle: package, validate, deploy --shadow, promote, rollback")
    cmds = models.add_subparsers(dest="models_command", required=True)

    p = _command(cmds, "package", "ONNX (or scikit-learn joblib/pickle) -> new version in the repository", _package)
    p.add_argument("model_file", type=Path, help=".onnx, or a scikit-learn estimator (.joblib/.pkl)")
    p.add_argument("--version", default="", help="version to create (default: one above the highest)")
    p.add_argument("--threshold", type=float,
                   help="alert threshold (default: the one giving production's benign alert rate)")
    p.add_argument("--alert-rate", type=float,
                   help="choose the threshold so this share of benign golden rows alerts (default: production's)")
    p.add_argument("--description", default="", help="one line for the card (default: none)")
    p.add_argument("--feature-set", default=DEFAULT_FEATURE_SET, choices=FEATURE_SETS,
                   help="the feature set the model reads (v2: v1 + entity profiles, docs/profiles.md; "
                        f"default: {DEFAULT_FEATURE_SET})")
    _golden_arg(p)

    v = _command(cmds, "validate", "contract, golden-set quality and latency vs production; exit 1 on failure",
                 _validate)
    v.add_argument("--version", required=True, help="the candidate version to validate (required)")
    v.add_argument("--against", help="production version to compare with (default: the live one from Kafka, "
                                     "else the configured one, else the highest below the candidate)")
    d = Margins()
    v.add_argument("--auc-margin", type=float, default=d.roc_auc,
                   help=f"ROC-AUC may be at most this much below production's (default: {d.roc_auc})")
    v.add_argument("--recall-margin", type=float, default=d.recall,
                   help=f"recall at the card threshold may be at most this much below production's "
                        f"(default: {d.recall})")
    v.add_argument("--alert-margin", type=float, default=d.alert_rate,
                   help=f"benign alert share may grow by at most this fraction of production's (default: "
                        f"{d.alert_rate})")
    add_latency_gates(v, d.latency_ratio, "time")
    v.add_argument("--batch", type=int,
                   help="micro-batch size of the latency runs (default: the service's SCORER_BATCH__MAX_RECORDS)")
    v.add_argument("--json", action="store_true", help="print the verdict as JSON (default: text)")
    v.add_argument("--kafka-timeout", type=float, default=listing.LIVE_TIMEOUT_S, metavar="SECONDS",
                   help="how long to try Kafka for the live production version when --against is not given "
                        f"(default: {listing.LIVE_TIMEOUT_S:g})")
    _golden_arg(v)

    dep = _command(cmds, "deploy", "score every event with this version too (shadow); only production alerts",
                   change("deploy-shadow"))
    dep.add_argument("--version", required=True, help="version to shadow (required); 'none' stops shadowing")
    dep.add_argument("--shadow", action="store_true", required=True, help="required: versions enter as shadows")
    for name, help_ in (("promote", "make the shadow (or --version) production, between micro-batches"),
                        ("rollback", "return to the previous production version (or --version)")):
        c = _command(cmds, name, help_, change(name))
        c.add_argument("--version", help="default: the shadow (promote) / the previous production (rollback)")
    change_args(cmds)

    lst = cmds.add_parser("list", help="versions in the repository (checksums, cards, feature sets), and what "
                                       "the live service serves when Kafka answers")
    _common(lst, kind_required=False)
    list_args(lst)


def _command(cmds: Any, name: str, help_: str, func: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = cmds.add_parser(name, help=help_)
    _common(parser, kind_required=True)
    parser.set_defaults(func=func)
    return parser


def _common(parser: argparse.ArgumentParser, *, kind_required: bool) -> None:
    parser.add_argument("--kind", choices=KINDS, required=kind_required,
                        help="event kind whose model to act on" + (" (required)" if kind_required else
                                                                    " (default: every configured kind)"))
    parser.add_argument("--config", type=Path, help="YAML settings file (default: none; env SCORER_* wins)")
    parser.add_argument("--repo", type=Path, help="model repository (default: SCORER_INFERENCE__MODEL_REPOSITORY)")


def _golden_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--golden", type=Path, help="golden set, a golden.npz (default: the candidate's, the "
                                                     "production's, else built from the shared data)")


def add_latency_gates(parser: argparse.ArgumentParser, ratio: float, measured: str) -> None:
    """``--latency-margin`` (relative to production, the gate by default) and
    ``--latency-budget-us`` (absolute, only when given): models and rule packs alike."""
    parser.add_argument("--latency-margin", type=float, default=ratio,
                        help=f"candidate median {measured} per event at most this many times production's, both "
                             f"measured in this run (default: {ratio})")
    parser.add_argument("--latency-budget-us", type=float,
                        help="also require p99 microseconds per event at most this (default: no absolute budget)")


def production_hint(ctx: ops.Context, kind: str, against: str | None, candidate: str | None,
                    timeout_s: float = listing.LIVE_TIMEOUT_S) -> str | None:
    """The version to compare with: --against, else the control topic/scorers, else what a
    scorer started now would serve (the configured version, else the highest on disk; the
    highest below the candidate when that is the candidate itself), said so on stderr.
    ``kind`` is a model's kind or a rule pack's key (``rules/<pack>``, ``scorer rules validate``)."""
    if against:
        return against
    configured = _configured_version(ctx, kind)
    try:
        desired, statuses = asyncio.run(ops.kafka_state(ctx, kind, timeout_s=timeout_s))
        return current_production(desired, statuses, configured)[0]
    except (KafkaUnavailable, ModelError) as exc:  # Kafka down or nothing recorded: fall back, say so
        on_disk = list_versions(ctx.repo, ctx.model(kind))
        fallback = configured or (on_disk[-1] if on_disk else None)
        source = "the configured version" if configured else "what a scorer started now would serve"
        if fallback is not None and fallback == candidate and not configured:
            below = [v for v in on_disk if int(v) < int(candidate)]
            if below:  # else the only version: it is what scorers serve
                fallback, source = below[-1], "the highest version below the candidate"
        print(f"note: production version not known from Kafka ({exc}); taking {fallback} ({source})",
              file=sys.stderr)
        return fallback


def _configured_version(ctx: ops.Context, kind: str) -> str:
    """The version set in the settings ("" when none: not the highest on disk, which the
    fallback above takes itself, below the candidate)."""
    if pack_of(kind) is not None:
        return ctx.settings.rules.version
    return ctx.settings.inference.versions.get(kind, "")


def _package(args: argparse.Namespace) -> int:
    if not args.model_file.is_file():  # before the golden set, which may take a minute to build
        raise ModelError(f"{args.model_file}: no such file")
    ctx = context(args)
    name = ctx.model(args.kind)
    prod_v = production_hint(ctx, args.kind, None, None) if list_versions(ctx.repo, name) else None
    production = load_version(ctx.repo, name, prod_v) if prod_v else None
    # Production is scored on the same rows (to match its alert rate): its columns too.
    sets = (args.feature_set, *([production.card.feature_set] if production else []))
    golden = goldens.resolve(args.kind, production.path if production else None, explicit=args.golden,
                             feature_sets=sets)
    req = PackageRequest(args.kind, args.model_file, name, golden, production, args.version,
                         args.threshold, args.alert_rate, args.description, args.feature_set)
    mv = package(ctx.repo, req)
    print(f"packaged {mv.name} version {mv.version} (feature set {mv.card.feature_set}) at {mv.path}")
    width = input_width(ctx.repo / name)
    if width != len(mv.card.feature_names):
        print(f"  note: Triton's config for {name} takes {width} features, this version {len(mv.card.feature_names)}:"
              " configs left as they are (one width per Triton model); scorers started on its feature set"
              " serve it in process", file=sys.stderr)
    if prod_v:  # publishing rewrote the Triton configs with `latest: 2`: name the versions in use again
        try:
            pinned = asyncio.run(ops.pin_current(ctx, args.kind))
        except (KafkaUnavailable, ModelError):
            pinned = ops.pin_versions(ctx, args.kind, {prod_v})
        print(f"  triton configs pinned to versions {pinned}")
    print(f"  threshold {mv.card.threshold} ({golden.describe()})")
    for k, val in sorted(mv.card.metrics.items()):
        print(f"  {k}: {val:.4f}")
    print(f"next: scorer models validate --kind {args.kind} --version {mv.version}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    ctx = context(args)
    name = ctx.model(args.kind)
    against = production_hint(ctx, args.kind, args.against, args.version, args.kafka_timeout)
    prod_dir = ctx.repo / name / against if against else None
    def golden(feature_sets: tuple[str, ...]) -> goldens.GoldenSet:
        return goldens.resolve(args.kind, ctx.repo / name / args.version, prod_dir, explicit=args.golden,
                               feature_sets=feature_sets)

    margins = Margins(args.auc_margin, args.recall_margin, args.alert_margin, args.latency_budget_us,
                      args.batch or ctx.settings.batch.max_records, latency_ratio=args.latency_margin)
    verdict = validate(ctx.repo, name, args.version, args.kind, golden, production=against, margins=margins)
    print_verdict(verdict, args.json)
    return 0 if verdict.passed else 1


def print_verdict(verdict: Verdict, as_json: bool) -> None:
    """A validate verdict as the engineer asked for it: its lines, or JSON (models and rule packs)."""
    print(msgspec.json.format(msgspec.json.encode(verdict)).decode() if as_json else verdict.text())
