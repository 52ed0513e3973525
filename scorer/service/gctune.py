"""Garbage-collector settings for a long-running scoring process.

Every micro-batch allocates tens of thousands of short-lived containers (events, feature
rows, findings). With CPython's default threshold (700 allocations) the collector runs
several times per batch, and each older-generation pass walks every long-lived object:
models, entity state, Kafka buffers. Measured with ``python -m scorer.bench.stages``:
unlucky batches paid 50 µs per alert instead of 9. Freezing what start-up built moves it
out of the collector's sight, and a larger first threshold lets a batch's garbage die by
reference counting before anyone scans it. Reference cycles are still collected.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator

YOUNG_THRESHOLD = 50_000


def tune_gc(young: int = YOUNG_THRESHOLD) -> None:
    """Call once start-up is done (models loaded, clients connected)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young, older, oldest)


@contextlib.contextmanager
def start_up(young: int = YOUNG_THRESHOLD) -> Iterator[Callable[[], None]]:
    """The collector off while the block starts a process: what start-up builds (models, rule
    packs, clients) lives as long as the process, and the ~670 collections that walked it
    were 0.2-0.3 s of a scorer's ~1.6 s of start-up CPU (docs/benchmarks.md section 58).
    Yields the call for the end of start-up: :func:`tune_gc` (one collection of whatever
    start-up left unreachable, the rest frozen), the collector on again. Leaving the block
    turns it back on in any case, unless it was off before."""
    was = gc.isenabled()
    gc.disable()

    def started() -> None:
        tune_gc(young)
        if was:
            gc.enable()

    try:
        yield started
    finally:
        if was:
            gc.enable()
