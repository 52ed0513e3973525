"""Step 3, features: one kind's events -> the float32 matrix its model reads.

A feature set that raises on a batch must not stop the stream (the record that made it
raise would crash-loop the service): the batch is featurised again one event at a time,
and the events that still raise become ``feature_error`` dead letters. Rows with a NaN or
infinite feature are dead-lettered too (``non_finite_features``): no model scores them.
"""

from __future__ import annotations

import logging

import numpy as np

from scorer.features.base import F32
from scorer.pipeline.batch import Batch, Item, KindRuntime
from scorer.pipeline.outcome import failure

log = logging.getLogger(__name__)


def compute_features(runtime: KindRuntime, items: list[Item], batch: Batch) -> tuple[F32, list[Item]]:
    """The matrix of ``items`` and the items it has rows for (the others are failures)."""
    try:
        x = runtime.features.transform([ev for ev, _ in items])
    except Exception:  # a record no check foresaw must not crash-loop the service
        x, items = _isolate(runtime, items, batch)
    if not np.isfinite(x).all():  # the common case without a per-row reduction
        finite = np.isfinite(x).all(axis=1)
        for i in np.flatnonzero(~finite).tolist():
            _, rec = items[i]
            batch.failures.append(failure(rec, "non_finite_features", "a feature is NaN or infinite"))
        items = [it for it, ok in zip(items, finite.tolist(), strict=True) if ok]
        x = x[finite]
    return x, items


def _isolate(runtime: KindRuntime, items: list[Item], batch: Batch) -> tuple[F32, list[Item]]:
    """Features one event at a time after the batch raised: the events that still raise are
    dead-lettered with the error, the rest are scored. Stateful feature sets may have taken
    part of the failed batch into their state already; that skew is the price of not
    stopping the stream on one record."""
    log.exception("%s features raised on a batch of %d; isolating the record(s)", runtime.kind.value, len(items))
    rows: list[F32] = []
    kept: list[Item] = []
    for item in items:
        try:
            rows.append(runtime.features.transform([item[0]]))
        except Exception as exc:
            batch.failures.append(failure(item[1], "feature_error", f"{type(exc).__name__}: {exc}"[:500]))
        else:
            kept.append(item)
    width = len(runtime.features.names)
    return (np.concatenate(rows) if rows else np.empty((0, width), np.float32)), kept
