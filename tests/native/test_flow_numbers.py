"""scorer.native's ``flow_numbers`` (the netflow features of the seven numbers of a flow)
against its numpy reference, for any doubles: zero packets and bytes, NaN and infinite
durations, -0.0, fractional and out-of-range ports."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import scorer.native
from scorer.features import netflow

_NATIVE: Any = scorer.native.built_module()
pytestmark = pytest.mark.skipif(_NATIVE is None, reason="scorer.native._native is not built")
_VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 70_000).map(float),
                    st.sampled_from([0.0, -0.0, 1e-3, 5e-4, 80.0, 443.0, 1023.0, 1024.0, 49151.0, 49152.0, 53.5]))


def _run(nums: np.ndarray[Any, Any], native: bool) -> tuple[bytes, bytes]:
    n = nums.shape[1]
    out, logged = np.full((28, n), 7.0), np.full((11, n), 7.0)  # rows it does not fill stay 7
    if native:
        _NATIVE.flow_numbers(nums, out, logged, netflow._WEB_PORTS, netflow._SERVICE_PORTS)
    else:
        netflow._numbers_reference(nums, out, logged)
    return out.tobytes(), logged.tobytes()


@settings(max_examples=400, deadline=None)
@given(arrays(np.float64, st.tuples(st.just(7), st.integers(0, 12)), elements=_VALUES))
def test_flow_numbers_equal_the_reference(nums: np.ndarray[Any, Any]) -> None:
    with np.errstate(all="ignore"):  # inf - inf and the like: the same NaN either way
        assert _run(nums, True) == _run(nums, False)


def test_flow_numbers_refuse_bad_buffers() -> None:
    nums, out, logged = np.zeros((7, 3)), np.zeros((28, 3)), np.zeros((11, 3))
    ports = (netflow._WEB_PORTS, netflow._SERVICE_PORTS)
    with pytest.raises(ValueError):
        _NATIVE.flow_numbers(np.zeros((6, 3)), out, logged, *ports)
    with pytest.raises(ValueError):
        _NATIVE.flow_numbers(nums, np.zeros((28, 2)), logged, *ports)
    with pytest.raises(ValueError):
        _NATIVE.flow_numbers(nums, out, np.zeros((11, 3), np.float32), *ports)
    with pytest.raises(TypeError):
        _NATIVE.flow_numbers(nums, out, logged, (80,), ())
