from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

def factorize(rows: list[Any], out: npt.NDArray[np.intp], /) -> list[Any]:
    """The distinct values of ``rows`` (first seen first); each row's index into them, written to ``out``."""

def masks(sel: list[int] | None, col: list[Any], wanted: Iterable[Hashable], n: int, /) -> dict[Any, int]:
    """For every wanted value, the bitset of the rows (of ``sel``, or 0..len(col)-1) holding it in ``col``."""

def texts(primary: list[Any] | None, fields: list[Any] | None, name: str | None, /) -> list[Any]:
    """Per row, ``primary[i] or fields[i].get(name) or ""`` (a list given as None is left out)."""

def fill(out: npt.NDArray[np.float64], column: int, width: int, inverse: npt.NDArray[np.intp] | None,
         rows: list[Any], /) -> None:
    """``out[i, column:column + width] = rows[inverse[i]]`` (``rows[i]`` when ``inverse`` is None)."""

def group(fields: list[Any], sel: list[int] | None, name: str, n: int, /) -> dict[Any, int]:
    """For every distinct ``fields[r].get(name)`` of the rows ``sel`` (all ``n`` if None), the bitset of its rows."""

def compile_needles(groups: list[tuple[str, ...]], /) -> object:
    """An automaton over the groups' needles (non-empty ASCII texts), for :func:`count_needles`."""

def count_needles(needles: object, texts: list[str], /) -> list[tuple[float, ...]]:
    """Per text, how many distinct needles of each group it contains (as floats)."""

def present(events: list[Any], attrs: tuple[str, ...], fields: list[Any], names: tuple[str, ...], /
            ) -> tuple[set[str], set[str]]:
    """The ``attrs`` some event holds a value of (not None, not ""), and the ``names`` some mapping of ``fields``
    holds a true value of."""

def plan(groups: list[tuple[Any, ...]], attrs: tuple[str, ...], slots: int, event_type: type | tuple[type, ...], /
         ) -> object:
    """Column groups (scorer.features.edr_batch.Plan's specs) compiled for :func:`run`; ``attrs[0]`` is the event
    code's attribute, ``attrs[1]`` the fields' (dicts or FieldMaps); ``slots`` path groups' basenames; ``run``
    refuses events of another type than ``event_type`` (or its 1-4 types: the first's slots are read, which the
    others must inherit, else those attributes are read by getattr)."""

def run(plan: object, events: list[Any], out: npt.NDArray[np.float64], /) -> bool:
    """Every group of ``plan`` over ``events``, into ``out`` ``[len(events), columns]``; False: refused (the Python
    blocks decide the batch)."""
