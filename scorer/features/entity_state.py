"""Per-entity state of the stateful feature sets, bounded, updated in arrival order.

Stateful features (counts per entity over a short window, first-seen flags) live in an
:class:`EntityState` owned by the feature-set instance: bounded (least recently seen
entities are evicted) and partition-local (one instance per consumer, events keyed by
entity). ``transform`` updates it in arrival order (see update_order), so a capture replayed in time order
gives the same features whether it arrives in one batch or in many.

Apart from :mod:`scorer.features.base`'s column helpers because it is the one part of a
feature set that remembers across batches; where :mod:`scorer.native` is built, its
``Windows`` keep the same state in C (:class:`NativeWindows`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

import scorer.native
from scorer.features.base import F64

S = TypeVar("S")


def update_order(n: int) -> npt.NDArray[np.intp]:
    """Row order in which stateful features are updated: arrival order.

    Kafka keeps each partition (each entity) in offset order, so arrival order is the one
    order that does not depend on where micro-batch boundaries fall; sorting by timestamp
    inside a batch would make an out-of-order stream's features depend on batching.
    Training feeds each capture in time order, which is that capture's arrival order.
    """
    return np.arange(n, dtype=np.intp)


class NativeWindows(Protocol):
    """:class:`EntityState` and its windows' ``add`` in one native object (scorer.native)."""

    def rows(self, keys: list[Any], ts: list[Any], a: list[Any], b: list[Any] | None, out: F64, col: int = -1,
             /) -> None: ...
    def clear(self) -> None: ...
    def __len__(self) -> int: ...


def entity_windows(window: Callable[[], S], max_entities: int, kind: int,
                   *limits: float) -> EntityState[S] | NativeWindows:
    """A feature set's per-entity windows, at most ``max_entities`` held: in C when
    scorer.native is built (its ``Windows`` of ``kind`` with ``limits``, the same updates as
    ``window``'s ``add``), else an :class:`EntityState` of ``window``."""
    native = scorer.native.module()
    if native is not None and max_entities >= 1:
        return native.Windows(kind, max_entities, *limits)  # type: ignore[no-any-return]
    return EntityState(window, max_entities)


def entity_rows(state: EntityState[Any] | NativeWindows, keys: Sequence[str], *columns: Sequence[Any],
                width: int, into: tuple[F64, int] | None = None) -> F64:
    """``[n, width]``: row i is what ``state.get(keys[i]).add(*values of row i)`` returned,
    the rows' entities updated in :func:`update_order` (the stateful part of a feature set).
    A :class:`NativeWindows` state does the same in C (``columns``: ts, then one or two more).
    ``into`` (a C-contiguous float64 matrix, a column): the rows go to its columns from there on
    (written in place by the native windows; the matrix is returned)."""
    n = len(keys)
    if not isinstance(state, EntityState):
        ts, a, *b = map(list, columns)  # copies by a C-level map: no generator frame a batch
        if into is not None:  # no block and no copy of it into the matrix: numpy's calls cost a small batch
            state.rows(list(keys), ts, a, b[0] if b else None, *into)
            return into[0]
        out = np.empty((n, width), dtype=np.float64)
        state.rows(list(keys), ts, a, b[0] if b else None, out)
        return out
    # EntityState.get inlined for the common case (an entity already held): one Python call
    # less per event; a new entity (creation, eviction) still goes through get.
    held, touch, get = state._items.get, state._items.move_to_end, state.get
    values = list(zip(*columns, strict=True))
    rows: list[tuple[float, ...]] = [()] * n
    for i in update_order(n).tolist():
        key = keys[i]
        item = held(key)
        if item is None:
            item = get(key)
        else:
            touch(key)
        rows[i] = item.add(*values[i])
    block = np.array(rows, dtype=np.float64).reshape(n, width)
    if into is None:
        return block
    into[0][:, into[1]:into[1] + width] = block
    return into[0]


class EntityState(Generic[S]):
    """Per-entity state, bounded: the least recently touched entity is evicted first."""

    def __init__(self, factory: Callable[[], S], max_entities: int = 100_000) -> None:
        self._factory = factory
        self._items: OrderedDict[str, S] = OrderedDict()
        self.max_entities = max_entities

    def get(self, key: str) -> S:
        item = self._items.get(key)
        if item is None:
            item = self._factory()
            self._items[key] = item
            if len(self._items) > self.max_entities:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(key)
        return item

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
