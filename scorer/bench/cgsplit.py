"""Where a cachegrind count goes: instructions per event by component of the scoring loop.

:mod:`scorer.bench.stages_ab` counts the instructions of scoring ``--valgrind-events`` events
(a run scoring them less a run scoring none). One total says whether a change helped; this
says where the rest is, so the next change aims at the largest part: each function's own
(not inclusive) count, grouped by what it belongs to:

- ``native <module>``: a function defined in ``scorer/native/<module>.c`` (found in the
  sources by name: the builds carry symbols, not always the file);
- ``msgspec``: the EDR and SIEM records' decode into their structs (and score records built);
- ``compiled trees``: the models' trees compiled to C (``predict``);
- ``CPython``: the interpreter, its objects and allocator (the Python code of every stage,
  and the objects other code makes);
- ``libc``: memset, memcpy, malloc, libm;
- ``unsymbolised``: code without symbols (numpy's internal functions, ONNX Runtime): the part
  of a count that moves most between identical runs;
- ``other``: the rest (numpy's exported functions, ...).

    python -m scorer.bench.cgsplit FULL.out BASE.out EVENTS
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

NATIVE = Path(__file__).resolve().parents[1] / "native"
# A C function definition's name: a line starting a declaration, the name before its "(".
_DEFINITION = re.compile(r"^[A-Za-z_][\w \*]*?\b([A-Za-z_]\w*)\s*\([^;{]*\)\s*\{", re.M)
_MSGSPEC = ("json_", "Struct_", "ms_", "mpack_")


def native_functions(native: Path = NATIVE) -> dict[str, str]:
    """Function name -> the ``scorer/native`` module whose C source defines it."""
    own: dict[str, str] = {}
    for source in sorted(native.glob("*.c")):
        for match in _DEFINITION.finditer(source.read_text(encoding="utf-8")):
            own.setdefault(match.group(1), source.stem)
    return own


def component(file: str, function: str, own: Mapping[str, str]) -> str:
    """The component of one (file, function) of a cachegrind output."""
    if function in own:
        return f"native {own[function]}"
    if function.startswith(_MSGSPEC):
        return "msgspec"
    if function == "predict":
        return "compiled trees"
    if "/Python-3" in file or "/cpython" in file or "libpython" in file:
        return "CPython"
    if file.startswith("./"):  # glibc's and libm's sources, as their debug info names them
        return "libc"
    if function == "???":
        return "unsymbolised"
    return "other"


def counts(path: Path, own: Mapping[str, str]) -> Counter[str]:
    """Instructions per component in a cachegrind output file (``--cache-sim=no``: Ir only)."""
    out: Counter[str] = Counter()
    file, key = "", "other"
    with open(path) as fh:
        for line in fh:
            if line.startswith("fl="):
                file = line[3:].strip()
            elif line.startswith("fn="):
                key = component(file, line[3:].strip(), own)
            elif line[:1].isdigit():
                out[key] += int(line.split()[1])
    return out


def per_event(full: Mapping[str, int], base: Mapping[str, int], events: int) -> dict[str, float]:
    """Each component's instructions per event: the run scoring ``events`` less the run scoring
    none, largest first, and ``total``."""
    if events <= 0:
        raise ValueError(f"events must be positive, got {events}")
    split = {k: (full.get(k, 0) - base.get(k, 0)) / events for k in set(full) | set(base)}
    ordered = dict(sorted(split.items(), key=lambda kv: -kv[1]))
    ordered["total"] = sum(split.values())
    return ordered


def table(sides: Mapping[str, Mapping[str, float]]) -> str:
    """A markdown table of :func:`per_event` splits side by side (components of the first side's order)."""
    names = list(sides)
    keys = [*dict.fromkeys(k for split in sides.values() for k in split if k != "total"), "total"]
    lines = ["| component | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(f"{sides[n].get(key, 0.0):,.0f}" for n in names) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("full", type=Path, help="cachegrind output of the run scoring EVENTS events")
    parser.add_argument("base", type=Path, help="cachegrind output of the run scoring none")
    parser.add_argument("events", type=int)
    args = parser.parse_args()
    own = native_functions()
    print(table({"instructions per event": per_event(counts(args.full, own), counts(args.base, own), args.events)}))


if __name__ == "__main__":
    main()
