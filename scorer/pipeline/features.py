"""Step 3, features: one kind's events -> the float32 matrix its model reads.

A feature set that raises on a batch must not stop the stream (the record that made it
raise would crash-loop the service): the batch is featurised again one event at a time,
and the events that still raise become ``feature_error`` dead letters. Rows with a NaN or
infinite feature are dead-lettered too (``non_finite_features``): no model scores them.
"""

from __future__ import annotations

import logging
from operator import itemgetter

import numpy as np

import scorer.native
from scorer.features.base import F32
from scorer.pipeline.batch import Batch, Item, KindRuntime
from scorer.pipeline.outcome import failure

log = logging.getLogger(__name__)
_EVENT = itemgetter(0)


def compute_features(runtime: KindRuntime, items: list[Item], batch: Batch) -> tuple[F32, list[Item]]:
    """The matrix of ``items`` and the items it has rows for (the others are failures)."""
    try:
        x = runtime.features.transform(list(map(_EVENT, items)))
    except Exception:  # a record no check foresaw must not crash-loop the service
        x, items = _isolate(runtime, items, batch)
    if not _all_finite(x):  # the common case without a per-row reduction
        finite = np.isfinite(x).all(axis=1)
        for i in np.flatnonzero(~finite).tolist():
            _, rec = items[i]
            batch.failures.append(failure(rec, "non_finite_features", "a feature is NaN or infinite"))
        items = [it for it, ok in zip(items, finite.tolist(), strict=True) if ok]
        x = x[finite]
    return x, items


def _all_finite(x: F32) -> bool:
    """``np.isfinite(x).all()``; one native pass where built (numpy's two calls and a boolean
    matrix cost ~3-8 µs per kind at every batch, more than the check)."""
    native = scorer.native.module()
    if native is not None and x.flags.c_contiguous and x.dtype in _NATIVE_DTYPES:
        return bool(native.all_finite(x))
    return bool(np.isfinite(x).all())


_NATIVE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


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
