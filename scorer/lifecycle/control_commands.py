"""The commands that act on the live service through the control plane, for models and rule
packs alike: ``deploy --shadow``, ``promote``, ``rollback`` and ``list`` under ``scorer models``
(:func:`scorer.lifecycle.cli.register` adds them) and under ``scorer rules``
(:func:`register_rule_commands`), keyed by event kind or ``rules/<pack>``.

Apart from the offline commands (:mod:`scorer.lifecycle.cli`: package, validate) because these
only parse arguments and print what :mod:`scorer.lifecycle.ops` and
:mod:`scorer.lifecycle.listing` answer; the two command trees share them, and the offline
commands share only :func:`context` (settings and repository from the arguments).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import msgspec

from scorer.config import Settings, load_settings
from scorer.lifecycle import listing, ops
from scorer.lifecycle.rulepacks import control_key


def register_rule_commands(cmds: Any) -> None:
    """``scorer rules deploy PACK VERSION --shadow``, ``promote [PACK]``, ``rollback [PACK]``: the
    model commands' control plane, with the key ``rules/<pack>`` (docs/rules.md)."""
    dep = cmds.add_parser("deploy", help="run this pack version beside production on every scorer (shadow)")
    dep.add_argument("pack", help="pack name (a directory of the rule repository)")
    dep.add_argument("version", help="'none' stops the rule shadow")
    dep.add_argument("--shadow", action="store_true", required=True, help="required: packs enter as shadows")
    dep.set_defaults(func=change("deploy-shadow"))
    for name, help_ in (("promote", "make the shadow pack (or --version) production, between micro-batches"),
                        ("rollback", "return to the previous production pack (or --version)")):
        c = cmds.add_parser(name, help=help_)
        c.add_argument("pack", nargs="?", help="default: the configured pack (SCORER_RULES__PACK)")
        c.add_argument("--version", help="default: the shadow (promote) / the previous production (rollback)")
        c.set_defaults(func=change(name))
    for c in (cmds.choices[n] for n in ("deploy", "promote", "rollback")):
        c.add_argument("--config", type=Path, help="YAML settings file (default: none; env SCORER_* wins)")
        c.add_argument("--repo", type=Path, help="rule repository (default: SCORER_RULES__REPOSITORY)")
        c.set_defaults(rules=True)
    change_args(cmds)


def rules_listing(args: argparse.Namespace) -> int:
    """``scorer rules list`` without a pack directory: versions on disk beside what each scorer serves."""
    args.rules = True
    return _list(args)


def list_args(parser: argparse.ArgumentParser) -> None:
    """Options of ``models list`` and ``rules list`` (the latter adds its own --config, --repo)."""
    parser.add_argument("--json", action="store_true", help="print the listing as JSON (default: text)")
    parser.add_argument("--kafka-timeout", type=float, default=listing.LIVE_TIMEOUT_S, metavar="SECONDS",
                        help="how long to try Kafka for the live serving state before listing the repository "
                             f"only (default: {listing.LIVE_TIMEOUT_S:g})")
    parser.set_defaults(func=_list)


def change_args(cmds: Any) -> None:
    for c in (cmds.choices[n] for n in ("deploy", "promote", "rollback")):
        c.add_argument("--reason", default="", help="recorded in the control topic with who issued it (default: none)")
        c.add_argument("--issued-by", help="who issues the change, recorded with it (default: $USER@host)")
        c.add_argument("--production", help="the production version, when no scorer has reported one yet "
                                            "(default: the control topic's, else the configured one)")
        c.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                       help="wait until a scorer applied or refused it; exit 1 on refusal (default: 0, no wait)")


def context(args: argparse.Namespace) -> ops.Context:
    settings: Settings = load_settings(args.config)
    if getattr(args, "rules", False):
        return ops.Context(settings, settings.lifecycle, args.repo or settings.rules.repository)
    return ops.Context(settings, settings.lifecycle, args.repo or settings.inference.model_repository)


def _key(args: argparse.Namespace, ctx: ops.Context) -> str:
    """The control key: the kind for a model, ``rules/<pack>`` for a rule pack."""
    if getattr(args, "rules", False):
        return control_key(args.pack or ctx.settings.rules.pack)
    return str(args.kind)


def change(action: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        ctx = context(args)
        result = asyncio.run(ops.change(
            ctx, _key(args, ctx), "clear-shadow" if action == "deploy-shadow" and args.version == "none" else action,
            version=args.version, reason=args.reason, issued_by=args.issued_by,
            production=args.production, wait_s=args.wait,
        ))
        s = result.state
        print(f"{s.kind}: {s.action} -> production {s.production}, shadow {s.shadow or '-'}, previous "
              f"{s.previous or '-'} (control offset {result.offset}; production before: "
              f"{result.production_source})")
        for warning in result.warnings:
            print(f"  WARNING: {warning}")
        for st in result.applied:
            print(f"  applied by {st.process}: production {st.production}, shadow {st.shadow or '-'}"
                  + (f"; WARNING: {st.warning}" if st.warning else ""))
        for st in result.refused:
            print(f"  REFUSED by {st.process}: {st.refused}")
        if args.wait and not (result.applied or result.refused):
            print(f"  no scorer reported within {args.wait:.0f}s (is one running?)")
            return 1
        return 1 if result.refused else 0

    return run


def _list(args: argparse.Namespace) -> int:
    ctx = context(args)
    if getattr(args, "rules", False):
        kinds = [_key(args, ctx)]
    else:
        kinds = [args.kind] if args.kind else [k.value for k in ctx.settings.kinds]
    items = asyncio.run(listing.listing(ctx, kinds, timeout_s=args.kafka_timeout))
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(items)).decode())
    else:
        print(listing.listing_text(items))
    return 0
