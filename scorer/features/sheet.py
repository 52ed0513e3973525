"""A micro-batch's feature matrix as the feature blocks write it (:class:`Sheet`), and each
column's position in a feature set's names (:func:`positions`).

The EDR blocks (:class:`scorer.features.edr_batch.EdrBatch`), the rule-hit features and the
SIEM features write into one; a feature set's native pass
(:class:`scorer.features.edr_batch.Plan`) fills one in C. Apart from the EDR batch because the
matrix knows nothing of events: names, columns and rows of values per distinct key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

import scorer.native
from scorer.features.base import F32, F64, finite32
from scorer.features.texts import Texts

Row = Sequence[float]


def positions(names: tuple[str, ...]) -> dict[str, int]:
    """Each name's column. Found by the tuple's identity (a feature set's own ``names``, the
    same object at every batch): hashing a tuple of 226 names cost half a Sheet."""
    held = _POSITIONS.get(id(names))
    if held is not None and held[0] is names:
        return held[1]
    at = {name: j for j, name in enumerate(names)}
    if len(_POSITIONS) >= 64:  # tuples built per call (tests) do not pile up
        _POSITIONS.clear()
    _POSITIONS[id(names)] = names, at
    return at


_POSITIONS: dict[int, tuple[tuple[str, ...], dict[str, int]]] = {}


class Sheet:
    """A batch's feature matrix (float64 ``[n, len(names)]``, zeros until written; each column
    is written once, so writing zeros is left out)."""

    __slots__ = ("at", "n", "names", "out")

    def __init__(self, names: tuple[str, ...], n: int) -> None:
        self.names, self.n, self.at = names, n, positions(names)
        self.out: F64 = np.zeros((n, len(names)))

    def put(self, name: str, values: npt.ArrayLike) -> None:
        self.out[:, self.at[name]] = values

    def put_block(self, first: str, block: F64) -> None:
        """The columns from ``first`` on (as many as ``block`` has), in ``names`` order."""
        j = self.at[first]
        self.out[:, j:j + block.shape[1]] = block

    def put_rows(self, first: str, width: int, inverse: npt.NDArray[np.intp] | None, rows: list[Row]) -> None:
        """Row ``i`` of the ``width`` columns from ``first`` on is ``rows[inverse[i]]`` (``rows[i]``
        when ``inverse`` is None): one row of values per distinct value of a column."""
        if not any(map(any, rows)):  # most columns of a small batch: nothing to write
            return
        j = self.at[first]
        native = scorer.native.module("_edr")
        if native is not None:
            native.fill(self.out, j, width, inverse, rows)
            return
        table = np.array(rows, dtype=np.float64).reshape(len(rows), width)
        self.out[:, j:j + width] = table if inverse is None else table[inverse]

    def put_texts(self, first: str, width: int, texts: Texts, row: Callable[[str], Row],
                  blank_zero: bool = True) -> None:
        """:meth:`put_rows` of ``row(value)`` for each distinct value of ``texts`` (zeros for ``""``
        unless ``blank_zero`` is false)."""
        if blank_zero:
            if texts.blank():
                return
            zeros = (0.0,) * width
            rows = [row(v) if v else zeros for v in texts.distinct]
        else:
            rows = list(map(row, texts.distinct))
        self.put_rows(first, width, None if texts.identity else texts.inverse, rows)

    def columns(self) -> dict[str, F64]:
        """Every column, by name (views of the matrix)."""
        out = self.out
        return {name: out[:, j] for name, j in self.at.items()}

    def matrix(self) -> F32:
        """The finite float32 matrix (:func:`scorer.features.base.stack`'s values)."""
        return finite32(self.out)
