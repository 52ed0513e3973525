"""The EDR v3 feature set alone on the very EDR batches the pipeline hands it (benchmarks.md section 31).

    PYTHONPATH=<tree> python -P docs/results/s14/hef-edr-count.py B.pkl N       # under callgrind, as below

``B.pkl``: docs/results/s13/hf-stages.py ``collect``'s batches (the realistic stream or the capture,
scored in micro-batches by the service after a warm-up). The EDR batches 0..N-1 run once outside the
count (caches, automata, first-seen values), then N..2N-1 inside one ``functools.reduce`` call:

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce \\
        --dump-after=functools_reduce --callgrind-out-file=OUT python -P ... B.pkl N

OUT.1's ``summary:`` is the instructions of those batches' ``transform`` calls alone; divide by the
events printed on stderr.
"""

from __future__ import annotations

import functools
import pickle
import sys
from typing import Any


def main(path: str, n: int) -> None:
    from scorer.events.structs import EventKind
    from scorer.features import feature_set

    with open(path, "rb") as fh:
        batches: list[list[Any]] = [evs for kind, evs in pickle.load(fh)["batches"] if kind == "edr"]
    fs = feature_set(EventKind.EDR, "v3")  # what the shipped models read
    for b in batches[:n]:
        fs.transform(b)
    counted = batches[n:2 * n]
    functools.reduce(lambda _, __: [fs.transform(b) for b in counted], range(1), None)
    print("events", sum(map(len, counted)), "batches", len(counted), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
