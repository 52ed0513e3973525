"""Feature definitions, one per event kind, shared by training (models/) and serving.

``feature_set(kind)`` returns a fresh instance: stateful feature sets own their bounded,
partition-local entity state, so each consumer (and each training replay) gets its own.
``transform`` always returns finite float32 rows (see :mod:`scorer.features.base`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from scorer.events.structs import Event, EventKind
from scorer.features.base import F32, FeatureSet
from scorer.features.edr import EdrFeatures
from scorer.features.netflow import NetflowFeatures
from scorer.features.siem import SiemFeatures

_CLASSES: dict[EventKind, type[NetflowFeatures] | type[EdrFeatures] | type[SiemFeatures]] = {
    EventKind.NETFLOW: NetflowFeatures,
    EventKind.EDR: EdrFeatures,
    EventKind.SIEM: SiemFeatures,
}


def feature_set(kind: EventKind | str) -> FeatureSet:
    """A new feature set (with fresh state) for ``kind``."""
    return _CLASSES[EventKind(kind)]()


def capture_matrix(
    kind: EventKind | str, events: Sequence[Event], chunk: int = 65_536
) -> tuple[F32, npt.NDArray[np.intp]]:
    """Training features of one capture: what serving computes when it is replayed.

    Events are put in event-time order (stable), then fed through a fresh feature set in
    chunks, exactly as a consumer sees micro-batches. Returns the matrix (rows in time
    order) and ``order``, the index of each row's event in ``events``.
    """
    fs = feature_set(kind)
    order = np.argsort(np.fromiter((e.ts for e in events), np.float64, len(events)),
                       kind="stable")
    ordered = [events[i] for i in order.tolist()]
    parts = [fs.transform(ordered[i:i + chunk]) for i in range(0, len(ordered), chunk)]
    matrix = np.concatenate(parts) if parts else np.zeros((0, len(fs.names)), np.float32)
    return matrix, order


__all__ = [
    "EdrFeatures",
    "FeatureSet",
    "NetflowFeatures",
    "SiemFeatures",
    "capture_matrix",
    "feature_set",
]
