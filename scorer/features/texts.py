"""A text column of a micro-batch, factorised: per-value work runs once per distinct value.

Security telemetry repeats itself: in a batch of 1,000 events of the bundled capture there
are 23 distinct SIEM rule names, 62 EDR images and 33 command lines. Regex scans, token
counts and hashing are the costly part of the EDR and SIEM features, so they run over the
distinct values and are gathered back to rows with one numpy index. The values are the
same as computing every row on its own (tests compare both).

>>> t = Texts(["cmd.exe", "powershell.exe", "cmd.exe", "cmd.exe", "cmd.exe", "powershell.exe"])
>>> t.distinct, t.inverse.tolist()
(['cmd.exe', 'powershell.exe'], [0, 1, 0, 0, 0, 1])
>>> t.contains_any(("power",)).tolist()
[0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from itertools import repeat
from typing import TypeVar

import numpy as np
import numpy.typing as npt

import scorer.native
from scorer.features.base import F64, contains_any, count_any, flag, isin

_SMALL = 4
H = TypeVar("H", bound=Hashable)
R = TypeVar("R")
Found = tuple[float, ...]  # per group of needles, how many a text contains
_ARANGE = np.arange(_SMALL + 1, dtype=np.intp)
_ZEROS = np.zeros(4096, dtype=np.intp)
_ZEROS.flags.writeable = False  # shared by the blank columns of every batch


class Texts:
    __slots__ = ("distinct", "identity", "inverse")

    def __init__(self, values: Iterable[str]) -> None:
        rows = values if isinstance(values, list) else list(values)
        if len(rows) <= _SMALL:
            # A handful of rows (a per-event caller): factorising costs more than it saves.
            self.distinct: list[str] = rows
            self.inverse: npt.NDArray[np.intp] = _ARANGE[: len(rows)]
            self.identity = True
            return
        if not any(rows) and rows.count("") == len(rows):
            # Every row "" (most text columns of a small batch): nothing to factorise.
            self.distinct, self.inverse, self.identity = rows[:1], zeros(len(rows)), False
            return
        self.distinct, self.inverse = factorize(rows)
        # No repeats: rows are the distinct values, no gather needed.
        self.identity = len(self.distinct) == len(rows)

    @classmethod
    def sparse(cls, n: int, rows: Sequence[int], values: list[str]) -> Texts:
        """A column of ``n`` rows that holds ``values`` at ``rows`` (distinct, ascending) and
        ``""`` elsewhere: only those rows are factorised (most events of a batch carry nothing)."""
        if n <= _SMALL or len(rows) == n:
            full = [""] * n
            for r, v in zip(rows, values, strict=True):
                full[r] = v
            return cls(full)
        distinct, codes = factorize(["", *values])
        out = cls.__new__(cls)
        out.distinct = distinct
        out.inverse = np.zeros(n, dtype=np.intp)
        out.inverse[np.asarray(rows, dtype=np.intp)] = codes[1:]
        out.identity = False
        return out

    def __len__(self) -> int:
        return int(self.inverse.shape[0])

    def blank(self) -> bool:
        """Every row is ``""`` (most text columns of a small batch)."""
        return not any(self.distinct)

    def rows(self) -> list[str]:
        """The value of every row, in row order."""
        distinct = self.distinct
        return [distinct[j] for j in self.inverse.tolist()]

    def map(self, fn: Callable[[str], str]) -> Texts:
        """A new column: ``fn`` of each value (e.g. lower-case, basename)."""
        mapped = Texts(fn(v) for v in self.distinct)
        out = Texts.__new__(Texts)
        out.distinct = mapped.distinct
        out.inverse = mapped.inverse if self.identity else mapped.inverse[self.inverse]
        out.identity = self.identity and mapped.identity
        return out

    def number(self, fn: Callable[[str], float]) -> F64:
        """``fn`` of each row's value, as a float column."""
        return self.block(lambda d: np.fromiter((fn(v) for v in d), dtype=np.float64, count=len(d)))

    def flag(self, predicate: Callable[[str], bool]) -> F64:
        return self.block(lambda d: flag((predicate(v) for v in d), len(d)))

    def isin(self, members: Collection[str]) -> F64:
        return self.block(lambda d: isin(d, members))

    def contains_any(self, needles: Sequence[str]) -> F64:
        """1 where the text contains any needle (needles lower-case)."""
        return self.block(lambda d: contains_any(d, needles))

    def count_any(self, needles: Sequence[str]) -> F64:
        """How many distinct needles each text contains."""
        return self.block(lambda d: count_any(d, needles))

    def block(self, fn: Callable[[Sequence[str]], F64]) -> F64:
        """``fn`` over the distinct values (a row each), gathered back to the batch's rows:
        a column, or a ``[n, width]`` block."""
        per_value = fn(self.distinct)
        if self.identity:
            return per_value
        out: F64 = per_value[self.inverse]
        return out


def zeros(n: int) -> npt.NDArray[np.intp]:
    """The inverse of a column of ``n`` equal rows (read-only)."""
    return _ZEROS[:n] if n <= len(_ZEROS) else np.zeros(n, dtype=np.intp)


def first_texts(primary: list[str | None] | None, fields: list[Mapping[str, str]] | None = None,
                name: str = "") -> list[str]:
    """Per row, ``primary[i] or fields[i].get(name) or ""`` (a list given as None is left out):
    an attribute with a fallback field, an attribute or a field, empty when missing."""
    native = scorer.native.module("_edr")
    if native is not None:
        out: list[str] = native.texts(primary, fields, name)
        return out
    return first_texts_reference(primary, fields, name)


def first_texts_reference(primary: list[str | None] | None, fields: list[Mapping[str, str]] | None = None,
                          name: str = "") -> list[str]:
    """:func:`first_texts` in Python (the native code's reference)."""
    if fields is None:
        return [v or "" for v in primary or ()]
    if primary is None:
        return [f.get(name) or "" for f in fields]
    return [v or f.get(name) or "" for v, f in zip(primary, fields, strict=True)]


def factorize(rows: list[H]) -> tuple[list[H], npt.NDArray[np.intp]]:
    """The distinct values of ``rows`` in first-seen order, and each row's index into them."""
    native = scorer.native.module("_edr")
    if native is None:
        return factorize_reference(rows)
    codes = np.empty(len(rows), dtype=np.intp)
    distinct: list[H] = native.factorize(rows if type(rows) is list else list(rows), codes)
    return distinct, codes


def factorize_reference(rows: list[H]) -> tuple[list[H], npt.NDArray[np.intp]]:
    """:func:`factorize` in Python (the native code's reference).

    One C-level pass (no Python frame per row): ``setdefault(value, len(ids))`` gives a new
    value the next id (map takes the size before the insert) and a known one its own.
    """
    ids: dict[H, int] = {}
    codes = np.fromiter(map(ids.setdefault, rows, map(len, repeat(ids))), dtype=np.intp, count=len(rows))
    return list(ids), codes


class Needles:
    """Groups of needles (lower-case texts), looked for in many texts: per text, how many
    distinct needles of each group it contains (``sum(s in text for s in group)``; above 0: the
    text contains one, as :func:`scorer.features.base.contains_any` says). With scorer.native,
    one automaton pass per text instead of a search per needle."""

    __slots__ = ("_automaton", "groups")

    def __init__(self, *groups: Sequence[str]) -> None:
        self.groups = [tuple(g) for g in groups]
        self._automaton: object = None  # built on first native use; False: needles it cannot take

    def counts(self, texts: list[str]) -> list[tuple[float, ...]]:
        native = scorer.native.module("_edr")
        if native is not None and self._automaton is None:
            try:
                self._automaton = native.compile_needles(self.groups)
            except ValueError:  # a needle outside ASCII (or empty): the Python reference
                self._automaton = False
        if native is not None and self._automaton is not False:
            out: list[tuple[float, ...]] = native.count_needles(self._automaton, texts)
            return out
        return [tuple(float(sum(1 for s in g if s in t)) for g in self.groups) for t in texts]


def text_memo(fn: Callable[[str], R], *, lower: bool = False, longest: int = 1024,
              size: int = 4096) -> Callable[[str], R]:
    """``fn`` of a text (``fn(text.lower())`` with ``lower``; ``fn`` pure), cached for texts up to
    ``longest`` characters: a stream's values (rule names, keys of an event's fields) recur
    across batches, and their per-value work costs more than the rest of a small batch. The
    bound keeps the cache small whatever the records say."""
    plain = (lambda text: fn(text.lower())) if lower else fn
    cached = functools.lru_cache(maxsize=size)(plain)

    def call(text: str) -> R:
        return cached(text) if len(text) <= longest else plain(text)

    return call


def found_rows(needles: Needles, row: Callable[[str, Found], R]) -> Callable[[str], R]:
    """``row`` of a value's lower-case text and the ``needles`` found in it, cached by value."""
    def rows(value: str) -> R:
        lower = value.lower()
        return row(lower, needles.counts([lower])[0])
    return text_memo(rows)
