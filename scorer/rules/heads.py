"""A batch's logsources by its rows' (Channel, EventID): each distinct pair looked at once.

A pack's logsource trees test only the head fields (``Channel``, ``EventID``: what
:mod:`scorer.rules.compile` puts there), so which logsources hold on a row, and which head
atoms it matches, depend on nothing but the row's pair. A stream carries a few dozen pairs
(one per Windows channel and event type), so :class:`Heads` remembers, per pair, its head atoms
and the logsources that hold, and a batch costs one pass over its rows and a lookup per
distinct pair: it replaced reading and matching both columns, evaluating every logsource tree
a head atom triggers (~22 per 17-event batch, 5 of them holding) and listing their rows.

A pair is worked out as :class:`~scorer.rules.engine.RuleEngine` did for a whole batch: its
values made text as the head columns' readers make them, matched by the fields' matchers, and
the logsource trees the atoms trigger evaluated on the one row. Whatever this cannot take (a
value of another type than the attribute's, a matcher raising, a pack whose logsources read
other fields) returns None, and the engine takes its field by field path, which reports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from types import ModuleType
from typing import Any

from scorer.events.structs import EndpointEvent
from scorer.rules.bitsets import Triggers
from scorer.rules.compiled_trees import Compiled
from scorer.rules.fields import CANONICAL, raw_column_reader
from scorer.rules.matchers import FieldMatcher

# Pairs remembered (then forgotten at once): far above any real stream's.
MAX_PAIRS = 1 << 12
# (head atom ids, logsource numbers that hold), per pair.
Entry = tuple[tuple[int, ...], tuple[int, ...]]


class Heads:
    """The head columns' atoms and the logsources that hold, per distinct row of head values."""

    def __init__(self, head_fields: Sequence[str], matchers: Mapping[str, FieldMatcher], triggers: Triggers,
                 code: Sequence[Compiled]) -> None:
        self.names = tuple(head_fields)
        raws = [raw_column_reader(name) for name in self.names]
        # Only fields read off one attribute each (EventID, Channel) have a pair per row.
        self.usable = bool(raws) and all(raw is not None for raw in raws)
        self.attrs = tuple(CANONICAL[name] for name in self.names) if self.usable else ()
        self.getters: list[Callable[[EndpointEvent], Any]] = [attrgetter(attr) for attr in self.attrs]
        self.to_text = [raw[1] for raw in raws if raw is not None]
        self.types = [raw[2] for raw in raws if raw is not None]
        self.type_tuples = tuple(tuple(types) for types in self.types)
        self.matchers = [matchers.get(name) for name in self.names]
        self.triggers, self.code = triggers, code
        self.cache: dict[tuple[Any, ...], Entry] = {}

    def masks(self, events: Sequence[EndpointEvent], bits: Sequence[int], amask: dict[int, int],
              ls_masks: list[int], native: ModuleType | None = None) -> list[int] | None:
        """Or the head atoms' rows into ``amask`` and each logsource's rows into ``ls_masks``;
        the logsources that hold on some row, ascending. None: not here (nothing written).
        ``native``: :mod:`scorer.native._rules`, whose ``heads`` does it in one pass."""
        if not self.usable:
            return None
        rows: dict[tuple[Any, ...], int] | list[int] | None
        if native is not None and isinstance(events, list):
            # All of it in one C pass when every pair of the batch is known (most batches);
            # else the pairs' rows, for the new ones to be worked out below.
            rows = native.heads(events, self.attrs, self.type_tuples, self.cache, amask, ls_masks)
            if type(rows) is list:
                return rows
        else:
            rows = self._rows(events, bits)
        if not isinstance(rows, dict):
            return None
        entries = []
        for key, mask in rows.items():
            entry = self.cache.get(key)
            if entry is None:
                entry = self._entry(key)
                if entry is None:
                    return None
            entries.append((entry, mask))
        live: set[int] = set()
        for (atoms, holding), mask in entries:
            for aid in atoms:
                amask[aid] = amask.get(aid, 0) | mask
            for index in holding:
                ls_masks[index] |= mask
            live.update(holding)
        return sorted(live)

    def _rows(self, events: Sequence[EndpointEvent], bits: Sequence[int]) -> dict[tuple[Any, ...], int] | None:
        """Each distinct pair's rows (``pairs`` of :mod:`scorer.native._rules` in Python)."""
        columns = [list(map(get, events)) for get in self.getters]
        for column, types in zip(columns, self.types, strict=True):
            if not set(map(type, column)) <= types:  # (True == 1 would share a pair with 1)
                return None
        rows: dict[tuple[Any, ...], int] = {}
        for r, key in enumerate(zip(*columns, strict=True)):
            rows[key] = rows.get(key, 0) | bits[r]
        return rows

    def _entry(self, key: tuple[Any, ...]) -> Entry | None:
        atoms: list[int] = []
        for value, to_text, matcher in zip(key, self.to_text, self.matchers, strict=True):
            if matcher is None:
                continue
            text = to_text(value)
            if text is None:
                atoms.extend(matcher.missing)
                continue
            try:
                atoms.extend(matcher.match(text))
            except Exception:  # the field by field path isolates the rows and names the rule
                return None
        one = dict.fromkeys(atoms, 1)
        holding = tuple(i for i in sorted(self.triggers.of(one)) if self.code[i](one.get, 1))
        if len(self.cache) >= MAX_PAIRS:
            self.cache.clear()
        entry = self.cache[key] = (tuple(one), holding)
        return entry
