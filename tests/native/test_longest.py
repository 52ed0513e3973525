"""``_native.longest`` (the decode step's size bound of a kind's values) against its reference,
``max(map(len, values), default=0)``: the same length or the same error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scorer.native

_native: Any = scorer.native.built_module()
pytestmark = pytest.mark.skipif(_native is None, reason="scorer.native._native is not built")


def _outcome(fn: Any, values: list[Any]) -> tuple[str, Any]:
    try:
        return "length", fn(values)
    except Exception as e:
        return type(e).__name__, None


def _reference(values: list[Any]) -> int:
    return max(map(len, values), default=0)


class _Sized:
    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length


_VALUE = st.one_of(st.binary(max_size=300), st.text(max_size=50), st.binary(max_size=40).map(bytearray),
                   st.binary(max_size=40).map(lambda b: memoryview(b)), st.integers(-3, 2**40).map(_Sized),
                   st.sampled_from([None, 7, 1.5, object()]))


@settings(max_examples=400, deadline=None)
@given(values=st.lists(_VALUE, max_size=60))
def test_the_longest_is_len_s(values: list[Any]) -> None:
    assert _outcome(_native.longest, values) == _outcome(_reference, values)


def test_a_len_that_empties_the_list_ends_the_loop() -> None:
    values: list[Any] = [b"ab"]

    class Emptying:
        def __len__(self) -> int:
            values.clear()
            return 1

    values += [Emptying(), b"abcdef"]
    assert _native.longest(values) == 2


def test_only_lists() -> None:
    with pytest.raises(TypeError):
        _native.longest((b"a",))
