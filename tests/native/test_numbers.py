"""``numbers`` (scorer/native/_native.c) against its reference, number_columns' Python path:
the same float64 columns bit for bit when every value is None or a plain int or float (huge
ints, -0.0; None, NaN and infinities read as the default), and a refusal, which sends the
batch to the reference, for anything else (bool, text, an int beyond any double); ``numbers``,
one attribute, the same way."""

from __future__ import annotations

import struct
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scorer.native
from scorer.features.base import number_columns, numbers
from tests.support.native import use_native

pytestmark = pytest.mark.skipif(not scorer.native.built(), reason="scorer.native._native is not built")
NATIVE: Any = scorer.native.built_module()


class Row(msgspec.Struct, frozen=True, gc=False):
    a: Any
    b: Any


_PLAIN = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0, -0.0, 2**53 + 1, 2**1023 * 3 // 2, 10**308, 1e308, 5e-324]))
_ANY = st.one_of(_PLAIN, st.sampled_from([None, True, False, "1", 10**400, -(10**400), 2**1024]))
_NUMBER_OR_NONE = st.one_of(_PLAIN, st.none())


def _reference(rows: list[Row], default: float, attr: str | None = None) -> bytes:
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_native(monkeypatch, "0")
        if attr is not None:
            return numbers(rows, attr, default).tobytes()
        return np.ascontiguousarray(number_columns(rows, ("a", "b"), default)).tobytes()


def _check(pairs: list[tuple[Any, Any]], default: float) -> None:
    rows = [Row(a, b) for a, b in pairs]
    out = np.empty((2, len(rows)))
    plain = all(v is None or (type(v) in (int, float) and (type(v) is float or abs(v) < 2**1024))
                for p in pairs for v in p)
    assert NATIVE.numbers(rows, ("a", "b"), default, out) is plain, pairs
    if plain:
        assert out.T.copy().tobytes() == _reference(rows, default), pairs
    with pytest.MonkeyPatch.context() as monkeypatch:  # what features get, either way
        use_native(monkeypatch, "1")
        assert np.ascontiguousarray(number_columns(rows, ("a", "b"), default)).tobytes() == _reference(rows, default)
        assert numbers(rows, "a", default).tobytes() == _reference(rows, default, "a")


@settings(max_examples=400, deadline=None)
@given(pairs=st.lists(st.tuples(_NUMBER_OR_NONE, _PLAIN), max_size=20), default=st.sampled_from([0.0, -1.0]))
def test_plain_numbers_read_as_the_reference(pairs: list[tuple[Any, Any]], default: float) -> None:
    _check(pairs, default)


@settings(max_examples=400, deadline=None)
@given(pairs=st.lists(st.tuples(_ANY, _PLAIN), min_size=1, max_size=8), default=st.sampled_from([0.0, -1.0]))
def test_other_values_are_left_to_the_reference(pairs: list[tuple[Any, Any]], default: float) -> None:
    _check(pairs, default)


def test_bits() -> None:
    rows = [Row(-0.0, float("nan")), Row(2**53 + 1, float("-inf")), Row(None, 3)]
    out = np.empty((2, 3))
    assert NATIVE.numbers(rows, ("a", "b"), -1.0, out)
    want = (-0.0, 2.0**53, -1.0, -1.0, -1.0, 3.0)
    assert [struct.pack("<d", v) for v in out.ravel()] == [struct.pack("<d", v) for v in want]
    with pytest.raises(ValueError, match="float64"):
        NATIVE.numbers(rows, ("a", "b"), 0.0, np.empty((2, 2)))
    with pytest.raises(AttributeError):
        NATIVE.numbers(rows, ("a", "nope"), 0.0, np.empty((2, 3)))
