"""``python -m models.edr_coverage``: which v3 EDR columns the training data exercises.

For every column of the v3 blocks (Security channel, objects, command line, rule hits): the
number of events with a non-zero value per source (OTRF atomic captures, OTRF extra
captures, Sigma regression events), and the number of OTRF captures in which it is non-zero
at least once. A column no event sets cannot be learned from this data, whatever it is
worth elsewhere; docs/models.md quotes the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt

from scorer.captures import LabeledEvent, iter_capture
from scorer.features import edr_cmdline, edr_objects, edr_security, feature_set
from scorer.features import rules as rule_block
from scorer.profiles.join import NoProfiles

from .datasets import Dataset, data_dir
from .edr_rules import TrainingRules
from .tables import table

BLOCKS = {"security": edr_security.NAMES, "objects": edr_objects.NAMES, "command line": edr_cmdline.NAMES,
          "rules": rule_block.NAMES}


def origins(ds: Dataset) -> npt.NDArray[np.str_]:
    """Per row: ``otrf`` (atomic captures), ``otrf-extra`` or ``sigma``."""
    extra = np.char.startswith(ds.group.astype(str), "otrf-extra:")
    out: npt.NDArray[np.str_] = np.where(ds.source == "sigma", "sigma", np.where(extra, "otrf-extra", "otrf"))
    return out


def coverage(ds: Dataset) -> tuple[str, dict[str, dict[str, int]]]:
    """The table, and per column: non-zero events per source and captures."""
    names = feature_set("edr", "v3", NoProfiles()).names
    origin = origins(ds)
    sources = ("otrf", "otrf-extra", "sigma")
    otrf = ds.source == "otrf"
    rows, counts = [], {}
    for block, cols in BLOCKS.items():
        for name in cols:
            nz = ds.X[:, names.index(name)] != 0
            c = {s: int((nz & (origin == s)).sum()) for s in sources}
            c["captures"] = len(np.unique(ds.capture[nz & otrf]))
            counts[name] = c
            rows.append([block, name, *(c[s] for s in sources), c["captures"]])
    totals = {s: int((origin == s).sum()) for s in sources}
    n_captures = len(np.unique(ds.capture[otrf]))
    header = ["block", "column", f"OTRF atomic ({totals['otrf']:,} events)",
              f"OTRF extra ({totals['otrf-extra']:,})", f"Sigma ({totals['sigma']:,})",
              f"OTRF captures (of {n_captures})"]
    return table(header, rows), counts


def summary(counts: dict[str, dict[str, int]]) -> str:
    """One line per block: how many of its columns no OTRF event sets, and which."""
    lines = []
    for block, cols in BLOCKS.items():
        silent = [n for n in cols if counts[n]["otrf"] + counts[n]["otrf-extra"] == 0]
        lines.append(f"- {block}: {len(cols) - len(silent)} of {len(cols)} columns set by some OTRF event"
                     + (f"; never: {', '.join(silent)}" if silent else ""))
    return "\n".join(lines)


def alerting_rules(files: list[Path], rules: TrainingRules) -> dict[str, dict[str, int]]:
    """Per high/critical rule: OTRF events it fires on, per capture (the rules stage over
    every capture, one at a time)."""
    alert = {r.id for r in rules.engine.rules if r.level in ("high", "critical")}
    out: dict[str, dict[str, int]] = {}
    for path in files:
        items = [i for i in iter_capture(path) if isinstance(i, LabeledEvent)]
        for item in rules(path, items):
            for h in getattr(item.event, "rule_hits", ()):
                if h in alert:
                    per = out.setdefault(h, {})
                    per[item.capture] = per.get(item.capture, 0) + 1
    return out


def rule_table(found: dict[str, dict[str, int]], rules: TrainingRules, events: int) -> str:
    meta = rules.meta
    rows = []
    for rule_id, per in sorted(found.items(), key=lambda kv: -sum(kv[1].values())):
        n = sum(per.values())
        top = sorted(per.items(), key=lambda kv: -kv[1])[:3]
        rows.append([meta[rule_id].title, meta[rule_id].level, n, f"{1000 * n / events:.3f}", len(per),
                     ", ".join(f"{c} ({k})" for c, k in top)])
    return table(["rule", "level", "OTRF events", "per 1,000 OTRF events", "captures", "most in"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.edr_coverage", description=__doc__)
    parser.add_argument("--rules", action="store_true",
                        help="instead: the high/critical rules that fire on OTRF events, by count")
    args = parser.parse_args(argv)
    from . import otrf_extra
    from .edr import dataset, training_rules

    if args.rules:
        root = data_dir() / "edr"
        files = sorted(root.glob("otrf-security-datasets/**/*.zip")) + otrf_extra.files(root / "otrf-extra")
        rules = training_rules()
        found = alerting_rules(files, rules)
        events = int((dataset("v3").source == "otrf").sum())
        print(rule_table(found, rules, events))
        return 0
    text, counts = coverage(dataset("v3"))
    print(f"{text}\n\n{summary(counts)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
