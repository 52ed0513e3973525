"""What every feature set shares: the protocol, the finite matrix and column helpers.

A feature set turns a batch of canonical events of one kind into a float32 matrix
``[n, len(names)]``. The same object computes training features (models/) and serving
features (scorer/pipeline), which is what rules out train/serve skew.

Rows are always finite: every column goes through :func:`finite`, which maps NaN to 0
and clips to +-``CLIP`` (the pipeline still checks, and dead-letters a non-finite row).

Stateful features keep their per-entity state in :mod:`scorer.features.entity_state`.
"""

from __future__ import annotations

import functools
import math
import re
import zlib
from collections.abc import Collection, Iterable, Mapping, MutableMapping, Sequence
from itertools import chain
from operator import attrgetter
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

import scorer.native
from scorer.events.structs import Event, EventKind
from scorer.native import column as column  # the features' reader of a batch's attribute (re-exported)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
CLIP = 1e6
_PLAIN_NUMBERS = {int, float}  # bool, None and text take the careful path


@runtime_checkable
class FeatureSet(Protocol):
    """One feature definition per event kind, shared by training and serving."""

    kind: EventKind
    names: tuple[str, ...]

    def transform(self, events: Sequence[Event]) -> F32:
        """float32 ``[len(events), len(names)]``; every value finite."""
        ...


def finite(values: npt.ArrayLike) -> F64:
    """NaN -> 0, +-inf and huge values -> +-CLIP: a feature is never non-finite."""
    return _finite_in_place(np.array(values, dtype=np.float64))


def _finite_in_place(out: F64) -> F64:
    # Clipping maps +-inf to +-CLIP and keeps NaN, which then reads 0: the same values as
    # nan_to_num followed by clip, in two passes over the array instead of six and no copy.
    np.clip(out, -CLIP, CLIP, out=out)
    np.copyto(out, 0.0, where=np.isnan(out))
    return out


def stack(names: Sequence[str], columns: Mapping[str, npt.ArrayLike], n: int) -> F32:
    """The columns in ``names`` order as a finite float32 matrix (missing name = bug)."""
    out = np.empty((n, len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        out[:, j] = columns[name]
    # One pass over the whole matrix: per-column calls cost more than the work on small batches.
    return finite32(out)


def finished(out: F64, rows: Rows | None = None) -> F32:
    """A feature-major block ``[len(names), n]`` (a feature set that fills a row per feature,
    or rows per numpy call) as the finite float32 matrix ``[n, len(names)]``, :func:`stack`'s values;
    ``rows`` (:class:`Rows`, their values): rows of ``out`` computed apart."""
    return finite32(out, transposed=True, rows=rows)


class Rows(NamedTuple):
    """Rows of a feature matrix's float64 block computed in a block of their own (``values``: one
    row each, in ``at``'s order), placed by :func:`finite32` itself."""

    at: npt.NDArray[np.intp]
    at_tuple: tuple[int, ...]
    values: F64


def finite32(out: F64, transposed: bool = False, rows: Rows | None = None) -> F32:
    """``out`` (its transpose if ``transposed``) as a C-ordered float32 matrix, NaN -> 0 and
    clipped to +-CLIP (:func:`finite`'s values), its ``rows`` first replaced (``out`` may be
    changed). In one native pass when scorer.native is built: numpy's four calls (and the
    rows' scatter) cost more than the work on a small batch."""
    native = scorer.native.module()
    if native is not None and out.flags.c_contiguous and (rows is None or rows.values.flags.c_contiguous):
        dst: F32 = np.empty(out.shape[::-1] if transposed else out.shape, dtype=np.float32)
        if rows is None:
            native.finite32(out, dst, transposed, CLIP)
        else:
            native.finite32(out, dst, transposed, CLIP, rows.values, rows.at_tuple)
        return dst
    if rows is not None:
        out[rows.at] = rows.values
    done = _finite_in_place(out)
    return np.ascontiguousarray(done.T if transposed else done, dtype=np.float32)


def numbers(events: Sequence[object], attr: str, default: float = 0.0) -> F64:
    """A numeric attribute over the batch; None -> ``default``."""
    native = scorer.native.module()
    if native is not None:  # no Python frame per value where there are Nones (number_columns' reader)
        out: F64 = np.empty(len(events), dtype=np.float64)
        if native.numbers(events if isinstance(events, list) else list(events), (attr,), default, out):
            return out
    values = column(events, attr)
    types = set(map(type, values))
    if types <= _PLAIN_NUMBERS:
        try:
            out = np.array(values, dtype=np.float64)
        except OverflowError:  # an int beyond any float: each such value reads ``default``
            pass
        else:
            # Ints convert to finite floats (or raise above); only float columns need a look.
            if float in types and not np.isfinite(out).all():
                out = np.where(np.isfinite(out), out, default)
            return out
    return np.fromiter((_num(v, default) for v in values), dtype=np.float64, count=len(values))


def number_columns(events: Sequence[object], attrs: tuple[str, ...], default: float = 0.0) -> F64:
    """``[n, len(attrs)]``: :func:`numbers` of each attribute (``len(attrs) >= 2``), read in one
    pass over the events when every value is a plain number (else column by column)."""
    native = scorer.native.module()
    if native is not None:  # the same values without a tuple per event and numpy's discovery
        out = np.empty((len(attrs), len(events)), dtype=np.float64)
        if native.numbers(events if isinstance(events, list) else list(events), attrs, default, out):
            return out.T
    rows = list(map(attrgetter(*attrs), events))
    types = set(map(type, chain.from_iterable(rows)))
    if types <= _PLAIN_NUMBERS:
        try:
            out = np.array(rows, dtype=np.float64).reshape(len(events), len(attrs))
        except OverflowError:  # an int beyond any float: numbers() reads it as ``default``
            pass
        else:
            if float in types and not np.isfinite(out).all():
                out = np.where(np.isfinite(out), out, default)
            return out
    return np.stack([numbers(events, attr, default) for attr in attrs], axis=1).reshape(len(events), len(attrs))


def texts(events: Sequence[object], attr: str) -> list[str]:
    """A text attribute over the batch, lower-cased, None -> ``""``."""
    return [(v or "").lower() for v in column(events, attr)]


def member(values: npt.NDArray[Any], members: frozenset[int]) -> npt.NDArray[np.bool_]:
    """Where ``values`` is one of ``members`` (a small set of integers): one broadcast
    comparison, cheaper than ``np.isin``'s sort at every batch size the scorer sees."""
    out: npt.NDArray[np.bool_] = (values[:, None] == _members(members)).any(axis=1)
    return out


@functools.lru_cache(maxsize=64)
def _members(members: frozenset[int]) -> npt.NDArray[np.int64]:
    return np.array(sorted(members), dtype=np.int64)


def only(events: Sequence[object], types: tuple[type, ...], what: str) -> None:
    """Raise TypeError unless every event is one of ``types`` (checked without a Python loop)."""
    if not set(map(type, events)) <= set(types):
        raise TypeError(f"{what} takes {' or '.join(t.__name__ for t in types)} events only")


def log1p(values: npt.ArrayLike) -> F64:
    out: F64 = np.log1p(np.maximum(np.asarray(values, dtype=np.float64), 0.0))
    return out


def ratio(num: npt.ArrayLike, den: npt.ArrayLike) -> F64:
    """num / den, 0 where den is 0 (no division warnings, no inf)."""
    n = np.asarray(num, dtype=np.float64)
    d = np.asarray(den, dtype=np.float64)
    shape = n.shape if n.shape == d.shape else np.broadcast(n, d).shape  # a broadcast object costs ~1 µs
    return np.divide(n, d, out=np.zeros(shape), where=d != 0)


def flag(values: Iterable[bool], n: int) -> F64:
    return np.fromiter((1.0 if v else 0.0 for v in values), dtype=np.float64, count=n)


def isin(values: Sequence[str], members: Collection[str]) -> F64:
    # C-level maps, no generator frame per value: these run over every distinct text of a batch.
    found = np.fromiter(map(members.__contains__, values), dtype=np.bool_, count=len(values))
    return found.astype(np.float64)


def contains_any(values: Sequence[str], needles: Sequence[str]) -> F64:
    """1 where the text contains any needle (needles lower-case)."""
    search = alternation(tuple(needles)).search
    found = np.fromiter(map(bool, map(search, values)), dtype=np.bool_, count=len(values))
    return found.astype(np.float64)


@functools.lru_cache(maxsize=256)
def alternation(needles: tuple[str, ...]) -> re.Pattern[str]:
    # One compiled alternation scans each text once, instead of one scan per needle.
    return re.compile("|".join(re.escape(s) for s in needles))


def count_any(values: Sequence[str], needles: Sequence[str]) -> F64:
    """How many distinct needles each text contains."""
    return np.fromiter(
        (sum(1 for s in needles if s in v) for v in values), dtype=np.float64, count=len(values)
    )


def basename(path: str) -> str:
    """Last component of a Windows or POSIX path (already lower-cased by :func:`texts`)."""
    return path.rsplit("\\", 1)[-1].rsplit("/", 1)[-1]


@functools.lru_cache(maxsize=1 << 16)
def stable_hash(text: str) -> int:
    """A hash that is the same in every process (Python's ``hash`` is salted).

    Cached: tokens, images and rule names repeat heavily across events.
    """
    return zlib.crc32(text.encode("utf-8", "replace"))


def hashed_onehot(values: Sequence[str], buckets: int) -> F64:
    """``[n, buckets]``: 1 in the bucket of each non-empty value."""
    out = np.zeros((len(values), buckets))
    for i, v in enumerate(values):
        if v:
            out[i, stable_hash(v) % buckets] = 1.0
    return out


def _num(value: object, default: float) -> float:
    if value is None or isinstance(value, str):
        return default
    try:
        out = float(value)  # type: ignore[arg-type]  # int / float / bool attributes only
    except OverflowError:  # an int beyond any float: decoding refuses these, never crash here
        return default
    return out if math.isfinite(out) else default


def group_names(prefix: str, labels: Iterable[str]) -> tuple[str, ...]:
    return tuple(f"{prefix}{label}" for label in labels)


def put_block(columns: MutableMapping[str, F64], names: Sequence[str], block: F64) -> None:
    """Spread the columns of a ``[n, len(names)]`` block into ``columns`` by name."""
    for j, name in enumerate(names):
        columns[name] = block[:, j]
