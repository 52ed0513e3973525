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

import gc

YOUNG_THRESHOLD = 50_000


def tune_gc(young: int = YOUNG_THRESHOLD) -> None:
    """Call once start-up is done (models loaded, clients connected)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young, older, oldest)
