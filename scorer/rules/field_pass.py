"""The rules' field pass: the rows (bitsets) of a batch where each atom matched.

Step 2 of :meth:`RuleEngine.evaluate <scorer.rules.engine.RuleEngine.evaluate>`: each field
the remaining rules name is read over the rows their logsources selected (in one C pass
where :mod:`scorer.native` is built, else field by field), grouped by distinct value, and
its :class:`~scorer.rules.matchers.FieldMatcher` runs once per value not matched in an
earlier batch; each atom gets the rows of the values that satisfied it. The logsources'
keyword lists are matched here too, over each event's whole text.

Apart from the engine because this is where the events' values are read and matched; the
engine around it evaluates logsource and detection trees over the bitsets filled in here,
and isolates the events a batch failed on.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from itertools import repeat
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from scorer.events.structs import EndpointEvent
from scorer.rules.bitsets import rows_of
from scorer.rules.fields import all_text
from scorer.rules.index import PackIndex
from scorer.rules.model import Atom, RuleFailure, RuleMeta, Variant

# Match results remembered across batches: values up to this long (a Sysmon CallTrace is ~1 kB
# and repeats), up to this many characters in all (then forgotten at once): tens of MB at most.
CACHE_VALUE_CHARS = 4096
CACHE_CHARS = 16 << 20
# Up to this many rows a field's value -> rows grouping is one Python pass; above, numpy.
SMALL_ROWS = 24


class RuleRaised(Exception):
    """Evaluating the rules that read a field raised (``rule_id``: one of them)."""

    def __init__(self, rule_id: str, message: str) -> None:
        super().__init__(message)
        self.rule_id, self.message = rule_id, message


class FieldPass(PackIndex):
    """A :class:`~scorer.rules.index.PackIndex` that matches a batch's values against its atoms:
    the current batch's state (set by :class:`~scorer.rules.engine.RuleEngine` as each batch
    starts) and the passes that read it."""

    def __init__(self, rules: Sequence[RuleMeta], atoms: Sequence[Atom],
                 conditions: Sequence[Sequence[Variant]]) -> None:
        super().__init__(rules, atoms, conditions)
        self._bits: list[int] = []
        self._rows: dict[int, Sequence[int]] = {}  # the current batch's row sets, listed
        self._arrays: dict[int, npt.NDArray[np.intp]] = {}  # and as index arrays
        # The batch's events' field names, made when first needed (the C pass looks its fields up
        # row by row instead): :meth:`_present_fields`.
        self._present: set[str] | None = None
        self._present_made = False
        self._fields: list[dict[str, str]] | None = None  # the batch's events' fields
        self._native: ModuleType | None = None  # scorer.native._edr, chosen per batch
        self._fold: ModuleType | None = None  # scorer.native._rules, chosen with it
        self._cached_chars = 0

    def _fields_of_rules(self, events: Sequence[EndpointEvent], plan: list[tuple[int, tuple[str, ...]]], n: int,
                         amask: dict[int, int], errors: dict[int, RuleFailure]) -> None:
        """Every field the plan names ((rows, names): each field over the union of its rows),
        read and matched, its atoms' rows in ``amask``."""
        rest: list[tuple[str, int, dict[Any, int] | None]] | None = None
        if self._fold is not None and self._fields is not None and isinstance(events, list):
            try:  # one C pass for the fields it reads: the values not matched yet come back
                rest = self._fold.fold_many(self._fields, events, n, None, self.reads, plan, amask)
            except Exception:  # (or-ing the same rows again is harmless) the field by field pass names it
                rest = None
        if rest is None:
            self._present_fields()  # (an unreadable event found here: every field read in Python)
            todo: dict[str, int] = {}
            for mask, names in plan:
                for name in names:
                    todo[name] = todo.get(name, 0) | mask
            rest = [(name, rows, None) for name, rows in todo.items()]
        leftover, missing = self.leftover, self.missing
        for name, rows, misses in rest:
            if misses is None and name in leftover and (present := self._present_fields()) is not None \
                    and name not in present:
                # No event carries it: every row reads None, which only the "missing" atoms match.
                for aid in missing.get(name, ()):
                    amask[aid] = amask.get(aid, 0) | rows
            else:
                self._field_of_rules(events, name, rows, n, amask, errors, misses)

    def _present_fields(self) -> set[str] | None:
        """The field names some event of the batch carries (any other reads None); None: an
        event's fields are unreadable (and then ``_fields`` is None too: every field is read,
        and fails naming its rule)."""
        if not self._present_made:
            self._present_made = True
            try:
                self._present = set().union(*self._fields) if self._fields is not None else None
            except Exception:
                self._fields = self._present = None
        return self._present if self._fields is not None else None

    def _field_of_rules(self, events: Sequence[EndpointEvent], name: str, rows: int, n: int,
                        amask: dict[int, int], errors: dict[int, RuleFailure],
                        misses: dict[Any, int] | None = None) -> None:
        try:
            self._field(events, name, rows, n, amask, errors, misses)
        except Exception as exc:  # named after a rule reading the field, for the per-event retry
            raise RuleRaised(self.field_rule.get(name, ""), f"{name}: {type(exc).__name__}: {exc}") from exc

    def _field(self, events: Sequence[EndpointEvent], name: str, rows: int, n: int,
               amask: dict[int, int], errors: dict[int, RuleFailure], misses: dict[Any, int] | None = None) -> None:
        sel = self._rows.get(rows)
        if sel is None:
            sel = self._rows[rows] = rows_of(rows, n)
        refs = self.fieldrefs.get(name) if misses is None else None  # (the C pass's misses: its refs are done)
        to_text: Callable[[Any], str | None] | None = None
        distinct: Collection[Any]
        groups = misses  # each distinct value's rows, when read by a C pass
        fold = self._fold
        read = self.reads.get(name) if fold is not None and self._fields is not None else None
        if fold is not None and read is not None and groups is None and not refs:
            # One C pass: the column read and grouped, the atoms of the values matched before
            # or-ed into amask; only values not matched yet come back, to be matched below.
            groups = fold.fold(self._fields, events, None if len(sel) == n else sel, n, name, *read[:4], amask)
            if groups is None:
                return
        raw = self.raw_columns.get(name) if not refs and read is None else None
        present = self._present_fields() if raw is None and read is None and not refs else None
        if present is not None and name not in present:
            raw = self.alias_columns.get(name)  # the alias is in no event's fields: the attribute
        if raw is not None:  # raw values, grouped first: each distinct one converted once
            col, to_text = raw[0](events, sel), raw[1]
            distinct = set(col)
            if not all(type(v) in raw[2] for v in distinct):
                raw = to_text = None
        if groups is not None:
            col, distinct = [], groups.keys()
        elif (raw is None and not refs and name in self.leftover and self._native is not None
              and self._fields is not None):
            # fields[name] only: the column read, its distinct values and their rows in one C pass
            groups = self._native.group(self._fields, None if len(sel) == n else sel, name, n)
            col, distinct = [], groups.keys()
        elif raw is None:
            col = self.columns[name](events, sel)
            distinct = set(col)
        matcher = self.matchers.get(name)
        # Match each distinct value once; gather rows only for the values that matched.
        matched: dict[Any, list[int]] = {}
        if matcher is not None:
            cache = self._seen[name]
            for value in distinct:
                text = value if to_text is None else to_text(value)
                if text is None:
                    if matcher.missing:
                        matched[value] = matcher.missing
                    continue
                found = cache.get(text)
                if found is None:
                    try:
                        found = matcher.match(text)
                    except Exception as exc:  # isolate the rows with this value, not the batch
                        message = f"{name}: {type(exc).__name__}: {exc}"
                        holding = (rows_of(groups[value], n) if groups is not None
                                   else [r for r, v in zip(sel, col, strict=True) if v == value])
                        for r in holding:
                            errors[r] = RuleFailure(self.field_rule.get(name, ""), message)
                        continue
                    if len(text) <= CACHE_VALUE_CHARS:
                        self._remember(cache, text, found)
                if found:
                    matched[value] = found
        if not matched and not refs:
            return
        if matched:
            masks = groups if groups is not None else self._masks(sel, col, matched, rows, n)
            for value in matched:
                mask = masks[value]
                if mask:
                    for aid in matched[value]:
                        amask[aid] = amask.get(aid, 0) | mask
        for aid, other in refs or ():
            get_other = self.getters[other]
            hit = [r for r, v in zip(sel, col, strict=True)
                   if v is not None and (second := get_other(events[r])) is not None and second.lower() == v.lower()]
            amask[aid] = amask.get(aid, 0) | self._mask(hit)

    def _remember(self, cache: dict[str, list[int]], value: str, found: list[int]) -> None:
        """Keep ``value``'s atoms for later batches, within :data:`CACHE_CHARS` over all fields."""
        self._cached_chars += len(value) + 64
        if self._cached_chars > CACHE_CHARS:
            for seen in self._seen.values():
                seen.clear()
            self._cached_chars = len(value) + 64
        cache[value] = found

    def _masks(self, sel: Sequence[int], col: list[Any], wanted: Collection[Any], rows: int, n: int) -> dict[Any, int]:
        """The bitset of the rows (of ``sel``, ``col`` being the values there) holding each
        value of ``wanted``."""
        if self._native is not None:  # one C pass over the rows, whatever their number
            masks: dict[Any, int] = self._native.masks(
                None if len(sel) == n else sel if type(sel) is list else list(sel), col, wanted, n)
            return masks
        if len(sel) <= SMALL_ROWS:  # a few rows: one pass, a dict lookup each
            masks = dict.fromkeys(wanted, 0)
            bits = self._bits
            for r, v in zip(sel, col, strict=True):
                if v in masks:
                    masks[v] |= bits[r]
            return masks
        # Many rows: code the column (one C-level pass), then every value's rows at once as
        # a (values x batch) bool matrix packed into bytes, one int per value.
        code_of = {v: i for i, v in enumerate(wanted)}
        k = len(code_of)
        if k < 255:  # codes as bytes: bytes(map(...)) is the cheapest C-level pass (fromiter: 1.6x)
            dtype: type[np.integer[Any]] = np.uint8
            codes = np.frombuffer(bytes(map(code_of.get, col, repeat(k))), dtype=np.uint8)
        else:
            dtype = np.intp
            codes = np.fromiter(map(code_of.get, col, repeat(k)), dtype=np.intp, count=len(col))
        if len(sel) != n:
            placed = np.full(n, k, dtype=dtype)
            placed[self._index(rows, sel)] = codes
            codes = placed
        packed = np.packbits(codes == np.arange(k, dtype=dtype)[:, None], axis=1, bitorder="little")
        return {v: int.from_bytes(packed[i].tobytes(), "little") for v, i in code_of.items()}

    def _index(self, rows: int, sel: Sequence[int]) -> npt.NDArray[np.intp]:
        """``sel`` (the rows of bitset ``rows``) as an index array, made once per batch."""
        index = self._arrays.get(rows)
        if index is None:
            index = self._arrays[rows] = np.asarray(sel, dtype=np.intp)
        return index

    def _mask(self, rows: Sequence[int]) -> int:
        """The bitset of ``rows``."""
        bits = self._bits
        if not rows:
            return 0
        if len(rows) == 1:
            return bits[rows[0]]
        if len(rows) < 32:
            mask = 0
            for r in rows:
                mask |= bits[r]
            return mask
        flags = np.zeros(len(bits), dtype=np.uint8)
        flags[rows] = 1
        return int.from_bytes(np.packbits(flags, bitorder="little").tobytes(), "little")

    def _keywords(self, events: Sequence[EndpointEvent], groups: list[int], ls_masks: list[int], n: int,
                  amask: dict[int, int]) -> None:
        """The keyword groups of logsources ``groups`` (ascending) over their rows."""
        texts: dict[int, str | None] = {}
        bits = self._bits
        for index in groups:
            rows, matcher = ls_masks[index], self.keyword_groups[index]
            if not rows:
                continue
            for r in rows_of(rows, n):
                if r not in texts:
                    texts[r] = all_text(events[r])
                text = texts[r]
                if text is not None:
                    for aid in matcher.match(text):
                        amask[aid] = amask.get(aid, 0) | bits[r]


