"""``python -m scorer.rules [package|validate|list ...]``: ``scorer rules`` without the rest
of the CLI. With no arguments: rebuild the shipped pack (``rule_repository/sigma_windows/3``)
from ``../shared/data/edr/sigma-rules`` with its tuning and risk policy, recording the rules that do
not compile."""

from __future__ import annotations

import argparse
import sys

from scorer.errors import ScorerError
from scorer.rules.build import DEFAULT_RISK, DEFAULT_TUNING
from scorer.rules.cli import register


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m scorer.rules")
    register(parser.add_subparsers(dest="command", required=True))
    shipped = ["package", "--allow-skips", "--tuning", str(DEFAULT_TUNING), "--risk", str(DEFAULT_RISK)]
    args = parser.parse_args(["rules", *(argv or shipped)])
    try:
        code: int = args.func(args)
    except ScorerError as exc:
        print(f"scorer rules: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
