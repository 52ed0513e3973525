"""Factorised text columns give exactly what computing every row on its own gives."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from scorer.features.base import basename, contains_any, count_any, hashed_onehot, isin
from scorer.features.texts import Texts

# Few distinct values, so rows repeat as they do in real telemetry.
VALUES = st.lists(st.sampled_from(["", "cmd.exe", "C:\\Users\\a\\evil.EXE", "powershell -enc aGk=",
                                   "x\x00y", "Ünïcode", "psexec \\\\admin$"]) | st.text(max_size=12),
                  max_size=40)
NEEDLES = ("exe", "admin$", "\x00", "ü", "-enc")


@given(VALUES)
def test_columns_equal_row_by_row(values: list[str]) -> None:
    t = Texts(values)
    assert t.rows() == values
    lower = t.map(str.lower)
    assert lower.rows() == [v.lower() for v in values]
    assert np.array_equal(lower.contains_any(NEEDLES), contains_any([v.lower() for v in values], NEEDLES))
    assert np.array_equal(lower.count_any(NEEDLES), count_any([v.lower() for v in values], NEEDLES))
    assert np.array_equal(t.isin(frozenset({"cmd.exe", ""})), isin(values, frozenset({"cmd.exe", ""})))
    assert np.array_equal(t.number(len), np.array([len(v) for v in values], dtype=np.float64))
    base = t.map(basename)
    assert np.array_equal(base.block(lambda d: hashed_onehot(d, 8)).reshape(len(values), 8),
                          hashed_onehot([basename(v) for v in values], 8).reshape(len(values), 8))


def test_empty_batch() -> None:
    t = Texts([])
    assert len(t) == 0 and t.rows() == [] and t.contains_any(("a",)).shape == (0,)
