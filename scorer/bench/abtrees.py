"""What :mod:`scorer.bench.stages_ab` makes sure of before it compares two source trees:
each runs its own native part, and equal outputs are not equal failures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any


def build_native(tree: Path) -> None:
    """Builds ``tree``'s ``scorer/native`` extensions in place from its own C sources with its
    own ``setup.py``, in a scratch directory (not through the tree's pyproject or an install,
    which would repoint the environment's package at the tree)."""
    native = tree / "scorer" / "native"
    sources = sorted(native.glob("*.[ch]"))
    if not sources:
        return  # a tree from before the native part
    if not (tree / "setup.py").exists():
        raise SystemExit(f"{tree}: C sources in scorer/native but no setup.py to build them with")
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    with tempfile.TemporaryDirectory(prefix="stages-ab-build-") as tmp:
        scratch = Path(tmp) / "scorer" / "native"
        scratch.mkdir(parents=True)
        shutil.copy(tree / "setup.py", tmp)
        for source in sources:
            shutil.copy(source, scratch)
        cmd = [sys.executable, "setup.py", "-q", "build_ext", "--inplace"]
        done = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        modules = sorted(scratch.glob(f"*{suffix}"))
        if done.returncode != 0 or not modules:
            raise SystemExit(f"{tree}: building scorer/native failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
        for built in modules:
            target = native / built.name
            if not target.exists() or target.read_bytes() != built.read_bytes():
                staged = target.with_name(target.name + ".staged")
                shutil.copy(built, staged)
                os.replace(staged, target)  # a process that loaded the old one keeps its mapping
        print(f"{tree}: scorer/native built ({', '.join(m.name for m in modules)})", flush=True)


def dead_letter_guard(runs: dict[str, list[dict[str, Any]]], max_share: float) -> list[str]:
    """Why equal digests would prove nothing: a side that dead-letters more than ``max_share``
    of its events, or a share that far from the other side's (a broken build, a missing
    model, a refusing decoder: both sides can fail alike and still agree)."""
    problems = []
    shares = {}
    for side, results in runs.items():
        counts: Counter[str] = Counter()
        for result in results:
            counts.update(result.get("dead_letter_reasons", {}))
        events = sum(r["events"] for r in results) or 1
        shares[side] = sum(counts.values()) / events
        print(f"{side:>6}: dead letters {shares[side]:.2%} of events, by reason {dict(counts) or '{}'}")
        if shares[side] > max_share:
            problems.append(f"{side} dead-lettered {shares[side]:.2%} of its events (> {max_share:.2%})")
    if abs(shares["before"] - shares["after"]) > max_share:
        problems.append(f"the sides' dead-letter shares differ by more than {max_share:.2%}")
    return problems


def unsymbolised(cachegrind_out: Path) -> int:
    """Instructions a cachegrind output file counts in code without symbols (``???`` file and
    function): the part of a count that moved by hundreds of millions between identical runs."""
    total, file, unknown = 0, "", False
    with open(cachegrind_out) as fh:
        for line in fh:
            if line.startswith("fl="):
                file = line[3:].strip()
            elif line.startswith("fn="):
                unknown = file == "???" and line[3:].strip() == "???"
            elif unknown and line[:1].isdigit():
                total += int(line.split()[1])
    return total
