"""Labelled feature matrices from the shared data, built with the serving feature code.

Every capture is read by :mod:`replay.readers` and turned into features by
:func:`scorer.features.capture_matrix` (time order, fresh entity state, micro-batches), the
same path a replay through the service takes. Each row keeps a ``group`` (the unit of the
evaluation split: host file, attack family/day, capture, scenario) and its source label.

The data folder is ``$SCORER_DATA_DIR``, default ``../shared/data`` next to the repository.
Matrices are cached under ``$SCORER_CACHE_DIR`` (default ``.cache/datasets``), keyed by the
feature names and the files' sizes and mtimes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from replay import LabeledEvent, iter_capture
from scorer.events.structs import EventKind
from scorer.features import capture_matrix, feature_set

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    return Path(os.environ.get("SCORER_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


def cache_dir() -> Path:
    return Path(os.environ.get("SCORER_CACHE_DIR", REPO_ROOT / ".cache" / "datasets"))


@dataclass
class Dataset:
    """Rows of one kind: features, truth (1 malicious, 0 benign), split group, provenance."""

    kind: EventKind
    X: npt.NDArray[np.float32]
    y: npt.NDArray[np.int8]
    group: npt.NDArray[np.str_]
    source: npt.NDArray[np.str_]  # dataset name per row (for per-source metrics)
    label: npt.NDArray[np.str_]  # source label (attack class / step / rule) per row
    capture: npt.NDArray[np.str_]  # capture (file) per row
    files: list[str]

    def subset(self, mask: npt.NDArray[np.bool_]) -> Dataset:
        return Dataset(self.kind, self.X[mask], self.y[mask], self.group[mask],
                       self.source[mask], self.label[mask], self.capture[mask], self.files)


# A labeller maps one read event to (truth or None = drop, group, source, label).
Labeller = Callable[[LabeledEvent], tuple[int | None, str, str, str]]


def build(kind: EventKind, files: Iterable[Path], labeller: Labeller) -> Dataset:
    """Read, label and featurise captures (each capture with its own fresh state)."""
    files = sorted(files)
    key = _cache_key(kind, files)
    cached = cache_dir() / f"{kind}-{key}.npz"
    if cached.is_file():
        with np.load(cached) as z:
            return Dataset(kind, z["X"], z["y"], z["group"], z["source"], z["label"],
                           z["capture"], [str(f) for f in files])
    parts: list[tuple[npt.NDArray[np.float32], list[tuple[int, str, str, str, str]]]] = []
    for path in files:
        items = [i for i in iter_capture(path) if isinstance(i, LabeledEvent)]
        if not items:
            continue
        x, order = capture_matrix(kind, [i.event for i in items])
        rows, keep = [], []
        for r, idx in enumerate(order.tolist()):
            truth, group, source, label = labeller(items[idx])
            if truth is not None:
                rows.append((truth, group, source, label, items[idx].capture))
                keep.append(r)
        parts.append((x[keep], rows))
    meta = [r for _, rows in parts for r in rows]
    ds = Dataset(
        kind,
        np.concatenate([x for x, _ in parts]).astype(np.float32),
        np.array([m[0] for m in meta], dtype=np.int8),
        *(np.array([m[j] for m in meta], dtype=np.str_) for j in range(1, 5)),
        files=[str(f) for f in files],
    )
    cached.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cached, X=ds.X, y=ds.y, group=ds.group, source=ds.source,
                        label=ds.label, capture=ds.capture)
    return ds


def _cache_key(kind: EventKind, files: list[Path]) -> str:
    digest = hashlib.sha256("\n".join(feature_set(kind).names).encode())
    for f in files:
        st = f.stat()
        digest.update(f"{f}:{st.st_size}:{int(st.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
