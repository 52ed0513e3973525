"""The EDR batch's sheet (scorer.features.sheet): its matrix holds what base.stack gives for the same columns."""

from __future__ import annotations

import numpy as np
import pytest

import scorer.native
from scorer.features.base import CLIP, stack
from scorer.features.sheet import Sheet
from scorer.features.texts import Texts
from tests.support.native import use_native

EXTREMES = [CLIP + 0.03, CLIP + 0.05, CLIP + 1.0, -CLIP - 0.04, np.inf, -np.inf, np.nan, 1e300, -1e300, 3.3,
            -0.0, 5e-324, np.nextafter(CLIP, 0), 16777217.0]


@pytest.mark.parametrize("native", ["0", "1"] if scorer.native.built("_edr") else ["0"])
def test_matrix_equals_stack(monkeypatch: pytest.MonkeyPatch, native: str) -> None:
    use_native(monkeypatch, native)
    n = len(EXTREMES)
    names = ("a", "b", "c", "d")
    sheet = Sheet(names, n)
    sheet.put("a", EXTREMES)
    texts = Texts([str(i % 3) for i in range(n)])
    sheet.put_rows("b", 2, texts.inverse, [(EXTREMES[int(v)], -EXTREMES[int(v) + 4]) for v in texts.distinct])
    # "d" never written: zeros
    columns = {"a": np.array(EXTREMES), "b": np.array([EXTREMES[i % 3] for i in range(n)]),
               "c": np.array([-EXTREMES[i % 3 + 4] for i in range(n)]), "d": np.zeros(n)}
    assert sheet.matrix().tobytes() == stack(names, columns, n).tobytes()
