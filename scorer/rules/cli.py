"""``scorer rules package|validate|list``: build, check and show Sigma rule packs offline;
``scorer rules deploy --shadow|promote|rollback|list``: the packs on the live service, through
the model lifecycle's control plane (:func:`scorer.lifecycle.cli.register_rule_commands`).

Exit codes: 0 done / passed; 1 the pack was refused (rules that do not compile, a
checksum, IR or golden-set mismatch: each printed as ``file: reason``; or a scorer refused a
deployed pack, with ``--wait``); 2 usage errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from scorer.lifecycle.cli import register_rule_commands, rules_listing
from scorer.lifecycle.listing import LIVE_TIMEOUT_S
from scorer.rules.build import DEFAULT_GOLDEN, DEFAULT_OUT, DEFAULT_SOURCE, PackRefused, package


def register(sub: Any) -> None:
    rules = sub.add_parser("rules", help="Sigma rule packs: package, validate, deploy --shadow, promote, "
                                         "rollback, list")
    cmds = rules.add_subparsers(dest="rules_command", required=True)

    p = cmds.add_parser("package", help="compile Sigma rules into a pack (refused if a rule does not compile)")
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                   help="root of the Sigma rules, LICENSE beside (default: %(default)s)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="pack directory to write (default: %(default)s)")
    p.add_argument("--allow-skips", action="store_true",
                   help="pack the rules that compile; record the others and why in the manifest "
                        "(default: refuse the pack if any rule does not compile)")
    p.add_argument("--golden", type=Path, default=DEFAULT_GOLDEN,
                   help="Sigma regression data to draw the golden set from, cases of packed rules "
                        "(default: %(default)s)")
    p.add_argument("--name", default="sigma_windows", help="pack name (default: %(default)s)")
    p.add_argument("--version", default=None, help="pack version (default: the --out directory's name)")
    p.add_argument("--tuning", type=Path, default=None,
                   help="YAML naming rules that stay features and evidence but alert on nothing alone "
                        "(default: none)")
    p.add_argument("--risk", type=Path, default=None,
                   help="YAML per-host risk policy carried in the pack (threshold, window_s, points per level, "
                        "model_points, model_floor; docs/rules.md) (default: none: the pack raises no risk alerts)")
    p.set_defaults(func=_package)

    v = cmds.add_parser("validate", help="checksums, recompile the pack's sources, golden set; exit 1 on failure")
    v.add_argument("pack", type=Path, help="the pack directory to check")
    v.set_defaults(func=_validate)

    ls = cmds.add_parser("list", help="a pack directory's rules (id, level, title, ATT&CK tactics); without "
                                      "one: the pack's versions on disk and what each scorer serves")
    ls.add_argument("pack_dir", type=Path, nargs="?", metavar="PACK_DIR",
                    help="a pack directory whose rules to list (default: list the pack's versions instead)")
    ls.add_argument("--level", help="with PACK_DIR: only rules of this level (default: every level)")
    ls.add_argument("--skipped", action="store_true",
                    help="with PACK_DIR: the rules left out at packaging, and why (default: the packed rules)")
    ls.add_argument("--pack", help="without PACK_DIR: this pack (default: SCORER_RULES__PACK)")
    ls.add_argument("--config", type=Path, help="YAML settings file (default: none; env SCORER_* wins)")
    ls.add_argument("--repo", type=Path, help="rule repository (default: SCORER_RULES__REPOSITORY)")
    ls.add_argument("--json", action="store_true", help="without PACK_DIR: print the listing as JSON (default: text)")
    ls.add_argument("--kafka-timeout", type=float, default=LIVE_TIMEOUT_S, metavar="SECONDS",
                    help="without PACK_DIR: how long to try Kafka for the live serving state before listing "
                         "the repository only (default: %(default)s)")
    ls.set_defaults(func=_list)
    register_rule_commands(cmds)


def _package(args: argparse.Namespace) -> int:
    try:
        manifest, skipped = package(args.source, args.out, allow_skips=args.allow_skips, golden=args.golden,
                                    name=args.name, version=args.version, tuning=args.tuning, risk=args.risk)
    except PackRefused as exc:
        print(f"scorer rules package: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: {manifest['rule_count']} rules ({_counts(manifest['by_level'])}; "
          f"{_counts(manifest['by_kind'])}), {manifest['atom_count']} atoms, "
          f"{manifest['golden_events']} golden events")
    if skipped:
        reasons = Counter(_reason_class(s.reason) for s in skipped)
        print(f"skipped {len(skipped)} rules (recorded in pack.json): " + _counts(dict(reasons.most_common())))
    if manifest.get("tuning"):
        print(f"tuning: {len(manifest['tuning'])} rules alert on nothing alone ({args.tuning})")
    if "risk" in manifest:
        print(f"risk policy ({args.risk}): {manifest['risk']}")
    for line in manifest.get("golden_left_out", []):
        print(f"golden: left out {line}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from scorer.rules.validate import validate_pack

    problems = validate_pack(args.pack)
    if problems:
        print(f"{args.pack}: refused, {len(problems)} problem(s)", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"{args.pack}: valid (checksums, recompiled IR identical, golden set passes)")
    return 0


def _list(args: argparse.Namespace) -> int:
    from scorer.rules.pack import read_pack

    if args.pack_dir is None:
        return rules_listing(args)
    pack = read_pack(args.pack_dir)
    if args.skipped:
        lines = [f"{s.rule_id or '-':36s}  {s.file}: {s.reason}" for s in pack.skipped]
    else:
        lines = [f"{rule.id:36s}  {rule.level:13s}  {rule.title}  [{', '.join(rule.tactics)}]"
                 for rule in pack.rules if not args.level or rule.level == args.level]
    try:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
    except BrokenPipeError:  # `scorer rules list ... | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the interpreter closes it at exit
    return 0


def _reason_class(reason: str) -> str:
    if reason.endswith("is not Windows"):
        return "not a Windows logsource"
    if reason.endswith("has no Windows channel mapping"):
        return reason.removeprefix("logsource ").replace(" has no Windows channel mapping", ": no channel mapping")
    return reason.split(":", 1)[0].split(" (", 1)[0]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())
