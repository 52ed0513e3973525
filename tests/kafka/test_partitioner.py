"""The batch partitioner places keys exactly where aiokafka's send() (and the Java client) would,
in C (scorer.native._native.partitions) and in the numpy reference alike."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scorer.native
from scorer.kafka.partitioner import murmur2, murmur2_batch, partitions_of
from tests.support.native import use_native

PATHS = ["0", "1"] if scorer.native.built() else ["0"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=64), min_size=1, max_size=50))
def test_murmur2_batch_equals_the_reference_on_random_keys(keys: list[bytes]) -> None:
    assert murmur2_batch(keys).tolist() == [murmur2(k) for k in keys]


@pytest.mark.parametrize("native", PATHS)
def test_partitions_match_send(native: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        use_native(mp, native)

        @settings(deadline=None)
        @given(st.lists(st.binary(max_size=40), min_size=1, max_size=30), st.integers(min_value=1, max_value=64))
        def check(keys: list[bytes], n: int) -> None:
            assert partitions_of(keys, n) == [(murmur2(k) & 0x7FFFFFFF) % n for k in keys]

        check()
        # Every tail length, keys longer than any uid, and many partitions.
        keys = [b"", b"a", b"ab", b"abc", b"abcd", bytes(range(256)) * 4, b"host-a", "主机-é".encode()]
        assert partitions_of(keys, 1 << 20) == [(murmur2(k) & 0x7FFFFFFF) % (1 << 20) for k in keys]


def test_murmur2_batch_of_no_keys_and_of_long_keys_beside_short_ones() -> None:
    assert murmur2_batch([]).tolist() == []
    keys = [b"", b"a", b"ab", b"abc", b"abcd", bytes(range(256)) * 4, b"host-a", b""]
    assert murmur2_batch(keys).tolist() == [murmur2(k) for k in keys]


@pytest.mark.skipif(not scorer.native.built(), reason="runs only with the native module built")
def test_the_native_partitioner_refuses_what_is_not_a_key_or_a_partition_count() -> None:
    native = scorer.native.built_module()
    assert native is not None
    assert native.partitions([None, b""], 3) == [(murmur2(b"") & 0x7FFFFFFF) % 3] * 2  # keyless: as b""
    assert native.partitions([], 3) == []
    with pytest.raises(TypeError, match="key 1 is str"):
        native.partitions([b"a", "b"], 3)
    with pytest.raises(ValueError, match="n_partitions"):
        native.partitions([b"a"], 0)
