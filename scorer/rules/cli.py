"""``scorer rules package|validate|list``: build, check and show Sigma rule packs offline;
``scorer rules deploy --shadow|promote|rollback|list``: the packs on the live service, through
the model lifecycle's control plane (:func:`scorer.lifecycle.control_commands.register_rule_commands`).

Exit codes: 0 done / passed; 1 the pack was refused (rules that do not compile, a
checksum, IR or golden-set mismatch: each printed as ``file: reason``; a ``validate`` gate
against production failed, :mod:`scorer.lifecycle.rule_validate`; or a scorer refused a
deployed pack, with ``--wait``); 2 usage errors (no such pack or production version).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec

from scorer.config import data_dir, load_settings
from scorer.errors import ModelError
from scorer.lifecycle.cli import add_latency_gates, print_verdict, production_hint
from scorer.lifecycle.control_commands import register_rule_commands, rules_listing
from scorer.lifecycle.listing import LIVE_TIMEOUT_S
from scorer.lifecycle.ops import Context
from scorer.lifecycle.rule_validate import RuleMargins, integrity, validate_rules
from scorer.lifecycle.rulepacks import control_key
from scorer.lifecycle.validate import Check, Verdict
from scorer.rules.build import DEFAULT_GOLDEN, DEFAULT_OUT, DEFAULT_SOURCE, PackRefused, package
from scorer.rules.pack import MANIFEST


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

    v = cmds.add_parser("validate", help="checksums, recompile, golden set; then detections, benign alert volume "
                                         "and latency against production; exit 1 on failure")
    v.add_argument("pack", type=Path, help="the candidate pack directory to check")
    d = RuleMargins()
    v.add_argument("--against", help="production version of the pack to compare with; 'none': the integrity "
                                     "checks only (default: the live one from Kafka, else the configured one, else the "
                                     "highest on disk, below the candidate when that is the candidate itself)")
    v.add_argument("--alert-margin", type=float, default=d.alert_rate,
                   help="share of benign background events that alert may grow by at most this fraction of "
                        f"production's (default: {d.alert_rate})")
    add_latency_gates(v, d.latency_ratio, "rule-engine time")
    v.add_argument("--allow-removed", action="store_true",
                   help="accept production rules the candidate no longer holds (default: each is a failure)")
    v.add_argument("--batch", type=int,
                   help="events per engine call in the latency runs (default: the service's "
                        "SCORER_BATCH__MAX_RECORDS)")
    v.add_argument("--data-dir", type=Path, default=data_dir(),
                   help="the shared data folder holding the benign EDR background (default: $SCORER_DATA_DIR or "
                        "../shared/data)")
    v.add_argument("--config", type=Path, help="YAML settings file (default: none; env SCORER_* wins)")
    v.add_argument("--repo", type=Path, help="rule repository holding production (default: SCORER_RULES__REPOSITORY)")
    v.add_argument("--json", action="store_true", help="print the verdict as JSON (default: text)")
    v.add_argument("--kafka-timeout", type=float, default=LIVE_TIMEOUT_S, metavar="SECONDS",
                   help="how long to try Kafka for the live production version when --against is not given "
                        f"(default: {LIVE_TIMEOUT_S:g})")
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
    candidate: Path = args.pack.resolve()
    settings = load_settings(args.config)
    repo: Path = (args.repo or settings.rules.repository).resolve()
    try:
        name = str(msgspec.json.decode((candidate / MANIFEST).read_bytes()).get("name") or candidate.parent.name)
    except (OSError, msgspec.DecodeError, AttributeError):
        name = candidate.parent.name  # the integrity check says what is wrong with the manifest
    # Production first: a version that is not there is a usage error, said before the recompile.
    in_repo = candidate.parent == repo / name
    production = None if args.against == "none" else production_hint(
        Context(settings, settings.lifecycle, repo), control_key(name), args.against,
        candidate.name if in_repo else None, args.kafka_timeout)
    prod_dir = repo / name / production if production else None
    if prod_dir is not None and not (prod_dir / MANIFEST).is_file():
        raise ModelError(f"{prod_dir}: no rule pack version there to compare with ({MANIFEST} missing)")
    started = time.perf_counter()
    problems, failed = integrity(candidate)
    if failed is not None:
        failed.against = production
        print_verdict(failed, args.json)
        print(f"{args.pack}: refused, {len(problems)} problem(s)", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if args.against == "none":  # the pack's own checks, asked for: no background read, nothing timed
        own = Check("integrity", True, "checksums, recompiled IR identical, golden set passes; not compared "
                                       "(--against none)")
        print_verdict(Verdict(name, candidate.name, None, True, [own], {}, time.perf_counter() - started), args.json)
        return 0
    margins = RuleMargins(args.alert_margin, args.latency_margin, args.latency_budget_us,
                          args.batch or settings.batch.max_records, allow_removed=args.allow_removed)
    verdict = validate_rules(candidate, prod_dir, args.data_dir, margins, checked=time.perf_counter() - started)
    print_verdict(verdict, args.json)
    return 0 if verdict.passed else 1


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
