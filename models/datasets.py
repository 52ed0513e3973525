"""Labelled feature matrices from the shared data, built with the serving feature code.

Every capture is read by :mod:`scorer.captures` and turned into features by
:func:`scorer.features.capture_matrix` (time order, fresh entity state, micro-batches), the
same path a replay through the service takes. Each row keeps a ``group`` (the unit of the
evaluation split: host file, attack family/day, capture, scenario) and its source label.

The data folder is ``$SCORER_DATA_DIR``, default ``../shared/data`` next to the repository.
Matrices are cached under ``$SCORER_CACHE_DIR`` (default ``.cache/datasets``), keyed by the
feature names, the files' sizes and mtimes and, for rule features, what they read of the rule
pack (its rules and IR, not its tuning or risk policy).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from scorer.captures import LabeledEvent, iter_capture
from scorer.config import data_dir as data_dir  # the one data-folder resolver; the readers import it from here
from scorer.events.structs import EndpointEvent, Event, EventKind
from scorer.features import capture_matrix, feature_set
from scorer.features.rules import RuleSource

REPO_ROOT = Path(__file__).resolve().parents[1]


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
    # The ids of the detection rules that fired, "|"-joined, per row (sets built with rules):
    # which rules may alert alone is the pack's tuning, evaluated without rebuilding.
    hits: npt.NDArray[np.str_] | None = None
    # Per row, the event's host and time (sets built since they were kept): what a stage
    # that accumulates over a host's recent events (models/edr_risk.py) is evaluated on.
    host: npt.NDArray[np.str_] | None = None
    ts: npt.NDArray[np.float64] | None = None

    def subset(self, mask: npt.NDArray[np.bool_]) -> Dataset:
        def part(a: npt.NDArray[Any] | None) -> npt.NDArray[Any] | None:
            return None if a is None else a[mask]

        return Dataset(self.kind, self.X[mask], self.y[mask], self.group[mask],
                       self.source[mask], self.label[mask], self.capture[mask], self.files,
                       part(self.hits), part(self.host), part(self.ts))


# A labeller maps one read event to (truth or None = drop, group, source, label).
Labeller = Callable[[LabeledEvent], tuple[int | None, str, str, str]]
# What runs on a capture's events before features (e.g. the rules stage setting rule_hits).
Prepare = Callable[[Path, list[LabeledEvent]], list[LabeledEvent]]
Rows = tuple[npt.NDArray[np.float32], list[tuple[int, str, str, str, str, str, str, float]]]


@dataclass(frozen=True)
class History:
    """What entity profiles (feature set v2) remember across the captures of one dataset.

    ``shared=False``: every capture starts from nothing, like the v1 entity state (separate
    labs, separate simulated networks). ``shared=True``: one profile state runs through all
    captures in order of their first event, because they were recorded on the same hosts
    over months (OTRF): each capture then meets the history its hosts really had.
    ``transplant`` names captures that have no host history of their own (Sigma's one-event
    regression samples): each of their events is ``move``d onto the host and time of a
    seeded random event of the other captures and joined against that history, without
    updating it.
    """

    name: str = "per-capture"
    shared: bool = False
    transplant: Callable[[Path], bool] = lambda path: False
    move: Callable[[Event, Event], Event] = lambda event, anchor: event
    seed: int = 20240611


PER_CAPTURE = History()


def build(kind: EventKind, files: Iterable[Path], labeller: Labeller, *, version: str = "",
          history: History = PER_CAPTURE, rules: RuleSource | None = None, prepare: Prepare | None = None,
          salt: str = "") -> Dataset:
    """Read, label and featurise captures in feature set ``version`` (v1 state is always
    fresh per capture; profiles follow ``history``).

    ``prepare`` runs on each capture's events before features (the rules stage: it sets
    ``rule_hits``), ``rules`` is the rule metadata v3 reads; ``salt`` names what else the
    matrix depends on (e.g. the rule pack's checksum) and goes into the cache key. Captures
    are read one at a time, each streamed from its file (a zip member line by line)."""
    files = sorted(files)
    key = _cache_key(kind, files, version, history, salt)
    cached = cache_dir() / f"{kind}-{key}.npz"
    if cached.is_file():
        return _load(cached, kind, [str(f) for f in files])
    # One builder per matrix: the test workers of make test (and CI's warm-up beside them)
    # would each spend the build's CPU on the same file; the others wait for it, then load it.
    with _one_builder(cached):
        if cached.is_file():
            return _load(cached, kind, [str(f) for f in files])
        return _build(cached, kind, files, labeller, version, history, rules, prepare)


@contextlib.contextmanager
def _one_builder(cached: Path) -> Iterator[None]:
    """Holds an exclusive lock beside ``cached`` (none where the cache is not writable)."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(cached.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _build(cached: Path, kind: EventKind, files: list[Path], labeller: Labeller, version: str,
           history: History, rules: RuleSource | None, prepare: Prepare | None) -> Dataset:
    if history.shared:
        parts = _shared_history(kind, files, labeller, version, history, rules, prepare)
    else:
        parts = [_rows(items, labeller, *capture_matrix(kind, [i.event for i in items], version=version,
                                                        rules=rules))
                 for path in files if (items := _items(path, prepare))]
    meta = [r for _, rows in parts for r in rows]
    group, source, label, capture, hits, hosts = (np.array([m[j] for m in meta], dtype=np.str_) for j in range(1, 7))
    times = np.array([m[7] for m in meta], dtype=np.float64)
    ds = Dataset(
        kind,
        np.concatenate([x for x, _ in parts]).astype(np.float32),
        np.array([m[0] for m in meta], dtype=np.int8),
        group, source, label, capture,
        files=[str(f) for f in files],
        hits=hits if rules is not None else None,
        host=hosts,
        ts=times,
    )
    cached.parent.mkdir(parents=True, exist_ok=True)
    _save(cached, ds)
    return ds


# The string columns are cached as their distinct values and each row's index into them:
# as fixed-width strings padded to the longest (258 characters of rule ids in a hits column)
# they are GBs to inflate on every load, for a few hundred distinct values.
_STRINGS = ("group", "source", "label", "capture", "host", "hits")


def _save(path: Path, ds: Dataset) -> None:
    arrays: dict[str, npt.NDArray[Any]] = {"X": ds.X, "y": ds.y}
    if ds.ts is not None:
        arrays["ts"] = ds.ts
    for name in _STRINGS:
        column = getattr(ds, name)
        if column is not None:
            values, codes = np.unique(column, return_inverse=True)
            arrays[f"{name}.values"], arrays[f"{name}.codes"] = values, codes.astype(np.int32)
    part = path.with_name(f"{path.stem}.{os.getpid()}.part.npz")  # readers never see half a file
    np.savez_compressed(part, **arrays)
    os.replace(part, path)


def _load(path: Path, kind: EventKind, files: list[str]) -> Dataset:
    with np.load(path) as z:
        group, source, label, capture = (_column(z, n) for n in ("group", "source", "label", "capture"))
        hits, host, ts = (_column(z, n) if n in z.files or f"{n}.codes" in z.files else None
                          for n in ("hits", "host", "ts"))
        ds = Dataset(kind, z["X"], z["y"], group, source, label, capture, files, hits, host, ts)
        upgrade = "group" in z.files  # a cache written before the codes: once, the next loads are fast
    if upgrade:
        with contextlib.suppress(OSError):  # a read-only cache is still read
            _save(path, ds)
    return ds


def _column(z: Any, name: str) -> npt.NDArray[Any]:
    if f"{name}.codes" in z.files:
        column: npt.NDArray[Any] = z[f"{name}.values"][z[f"{name}.codes"]]
        return column
    return z[name]  # type: ignore[no-any-return]


def _items(path: Path, prepare: Prepare | None = None) -> list[LabeledEvent]:
    items = [i for i in iter_capture(path) if isinstance(i, LabeledEvent)]
    return prepare(path, items) if prepare is not None and items else items


def _rows(items: list[LabeledEvent], labeller: Labeller, x: npt.NDArray[np.float32],
          order: npt.NDArray[np.intp]) -> Rows:
    rows, keep = [], []
    for r, idx in enumerate(order.tolist()):
        truth, group, source, label = labeller(items[idx])
        if truth is not None:
            event = items[idx].event
            hits, host = ("|".join(event.rule_hits), event.host) if isinstance(event, EndpointEvent) else ("", "")
            rows.append((truth, group, source, label, items[idx].capture, hits, host, float(event.ts)))
            keep.append(r)
    return x[keep], rows


def _shared_history(kind: EventKind, files: list[Path], labeller: Labeller, version: str,
                    history: History, rules: RuleSource | None = None,
                    prepare: Prepare | None = None) -> list[Rows]:
    from scorer.profiles.local import FrozenProfiles, LocalProfiles

    # Two passes, so that only one capture is in memory at a time: the first reads each
    # capture's first event time and size (the order and the guests' anchors), the second
    # featurises the captures in that order, reading each again.
    own_files, guest_files, first, counts = [], [], {}, {}
    for path in files:
        if history.transplant(path):
            guest_files.append(path)
            continue
        n, t0 = 0, float("inf")
        for item in iter_capture(path):
            if isinstance(item, LabeledEvent):
                n, t0 = n + 1, min(t0, item.event.ts)
        if n:
            own_files.append(path)
            first[path], counts[path] = t0, n
    own = sorted(own_files, key=lambda p: first[p])  # stable: ties keep file order
    guests = [i for path in guest_files for i in _items(path, prepare)]
    # Each guest event lands on a seeded random event of the shared captures; it is joined
    # right after that capture, while its host's history is what it was at that time (the
    # state at the end would have expired hosts not seen for the TTL).
    sizes = np.array([counts[p] for p in own])
    picks = np.random.default_rng(history.seed).integers(sizes.sum(), size=len(guests))
    capture_of = np.searchsorted(np.cumsum(sizes), picks, side="right")
    shared = LocalProfiles()
    frozen = FrozenProfiles(shared)
    parts = []
    for c, path in enumerate(own):
        items = _items(path, prepare)
        if len(items) != sizes[c]:
            raise RuntimeError(f"{path}: {len(items)} events on the second read, {sizes[c]} on the first")
        parts.append(_rows(items, labeller, *capture_matrix(kind, [i.event for i in items], version=version,
                                                            profiles=shared, rules=rules)))
        mine = np.flatnonzero(capture_of == c).tolist()
        if mine:
            start = int(sizes[:c].sum())
            moved = [history.move(guests[g].event, items[int(picks[g]) - start].event) for g in mine]
            x, order = capture_matrix(kind, moved, version=version, profiles=frozen, rules=rules)
            parts.append(_rows([guests[g] for g in mine], labeller, x, order))
    return parts


def _cache_key(kind: EventKind, files: list[Path], version: str, history: History, salt: str = "") -> str:
    digest = hashlib.sha256("\n".join(feature_set(kind, version).names).encode())
    if history.shared:  # (per-capture keys stay what they were before histories existed)
        digest.update(f"{history.name}:{history.seed}".encode())
    if salt:  # (and so do keys of matrices that depend on nothing else)
        digest.update(f"salt:{salt}".encode())
    for f in files:
        st = f.stat()
        digest.update(f"{f}:{st.st_size}:{int(st.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
