"""``python -m models.edr_coverage``: which v3 EDR columns the training data exercises.

For every column of the v3 blocks (Security channel, objects, command line, rule hits): the
number of events with a non-zero value per source (OTRF atomic captures, OTRF extra
captures, Sigma regression events), and the number of OTRF captures in which it is non-zero
at least once. A column no event sets cannot be learned from this data, whatever it is
worth elsewhere; docs/models.md quotes the table.
"""

from __future__ import annotations

import argparse

import numpy as np
import numpy.typing as npt

from models.datasets import Dataset
from models.tables import table
from scorer.features import edr_cmdline, edr_objects, edr_security, feature_set, rules
from scorer.profiles.join import NoProfiles

BLOCKS = {"security": edr_security.NAMES, "objects": edr_objects.NAMES, "command line": edr_cmdline.NAMES,
          "rules": rules.NAMES}


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


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m models.edr_coverage", description=__doc__).parse_args(argv)
    from models.edr import dataset

    text, counts = coverage(dataset("v3"))
    print(f"{text}\n\n{summary(counts)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
