"""scorer.native's ``finite32`` (the last step of every feature matrix) against the numpy
reference: the same float32 bytes for every double, NaN, infinities, -0.0 and values beyond
float32 included, in both layouts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import scorer.native
from scorer.features.base import CLIP, Rows, finite32
from tests.support.native import use_native

_NATIVE: Any = scorer.native.built_module()
pytestmark = pytest.mark.skipif(_NATIVE is None, reason="scorer.native._native is not built")
_DOUBLES = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from([-0.0, CLIP, -CLIP, np.nextafter(CLIP, np.inf), 3.5e38, 3.4028235e38, 1e-46]))


def _both(monkeypatch: pytest.MonkeyPatch, matrix: np.ndarray[Any, Any], transposed: bool) -> tuple[bytes, bytes]:
    with monkeypatch.context() as m:
        use_native(m, "0")
        reference = finite32(matrix.copy(), transposed)
    with monkeypatch.context() as m:
        use_native(m, "1")
        native = finite32(matrix.copy(), transposed)
    assert reference.flags.c_contiguous and native.flags.c_contiguous
    assert reference.dtype == native.dtype == np.float32 and reference.shape == native.shape
    return reference.tobytes(), native.tobytes()


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(0, 9), st.integers(0, 9)), elements=_DOUBLES), st.booleans())
def test_finite32_equals_the_reference(matrix: np.ndarray[Any, Any], transposed: bool) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        reference, native = _both(monkeypatch, matrix, transposed)
    assert native == reference


def test_a_matrix_not_in_c_order_takes_the_reference() -> None:
    matrix = np.arange(12.0).reshape(3, 4).T  # a view in Fortran order
    assert finite32(matrix).tobytes() == matrix.astype(np.float32).tobytes()


def test_finite32_refuses_bad_buffers() -> None:
    src = np.zeros((2, 3))
    with pytest.raises(ValueError):
        _NATIVE.finite32(src, np.empty((2, 3), np.float64), False, CLIP)
    with pytest.raises(ValueError):
        _NATIVE.finite32(src, np.empty((2, 3), np.float32), True, CLIP)
    with pytest.raises(ValueError):
        _NATIVE.finite32(np.zeros(6), np.empty(6, np.float32), False, CLIP)
    with pytest.raises(ValueError):  # numpy refuses the buffer
        _NATIVE.finite32(src.T, np.empty((3, 2), np.float32), False, CLIP)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 20), st.integers(0, 30), st.lists(st.tuples(st.integers(0, 599), _DOUBLES), max_size=12),
       st.booleans())
def test_mostly_zero_matrices_equal_the_reference(rows: int, cols: int, values: list[tuple[int, float]],
                                                  transposed: bool) -> None:
    """A feature sheet is mostly +0.0 (the native pass stores runs of +0.0 as they are): -0.0, NaN
    and other values among them, at any place of a four-value step, convert as the reference does."""
    matrix = np.zeros(rows * cols)
    for at, value in values:
        if matrix.size:
            matrix[at % matrix.size] = value
    with pytest.MonkeyPatch.context() as monkeypatch:
        reference, native = _both(monkeypatch, matrix.reshape(rows, cols), transposed)
    assert native == reference


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 9), st.integers(0, 9)), elements=_DOUBLES), st.booleans(),
       st.data())
def test_rows_computed_apart_read_as_placed(matrix: np.ndarray[Any, Any], transposed: bool,
                                            data: st.DataObject) -> None:
    """``rows``: the matrix's rows ``at`` read as ``values``' rows, as numpy's scatter of them first."""
    at = data.draw(st.lists(st.integers(0, matrix.shape[0] - 1), unique=True))
    values = data.draw(arrays(np.float64, (len(at), matrix.shape[1]), elements=_DOUBLES))
    rows = Rows(np.array(at, dtype=np.intp), tuple(at), values)
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_native(monkeypatch, "0")
        reference = finite32(matrix.copy(), transposed, rows)
        use_native(monkeypatch, "1")
        native = finite32(matrix.copy(), transposed, rows)
    assert native.tobytes() == reference.tobytes() and native.shape == reference.shape


def test_rows_computed_apart_refuse_bad_arguments() -> None:
    src, dst = np.zeros((3, 2)), np.empty((3, 2), np.float32)
    for values, at in ((np.zeros((1, 3)), (0,)), (np.zeros((2, 2)), (0,)), (np.zeros((1, 2)), (3,)),
                       (np.zeros((2, 2)), (1, 1)), (np.zeros((1, 2), np.float32), (0,))):
        with pytest.raises(ValueError):
            _NATIVE.finite32(src, dst, False, CLIP, values, at)
    with pytest.raises(TypeError):
        _NATIVE.finite32(src, dst, False, CLIP, np.zeros((1, 2)))
