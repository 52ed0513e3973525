"""The batch partitioner places keys exactly where aiokafka's send() (and the Java client) would."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scorer.kafka.partitioner import murmur2, murmur2_batch, partitions_of


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=64), min_size=1, max_size=50))
def test_murmur2_batch_equals_the_reference_on_random_keys(keys: list[bytes]) -> None:
    assert murmur2_batch(keys).tolist() == [murmur2(k) for k in keys]


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=30), st.integers(min_value=1, max_value=64))
def test_partitions_match_send(keys: list[bytes], n: int) -> None:
    assert partitions_of(keys, n).tolist() == [(murmur2(k) & 0x7FFFFFFF) % n for k in keys]


def test_murmur2_batch_of_no_keys_and_of_long_keys_beside_short_ones() -> None:
    assert murmur2_batch([]).tolist() == []
    keys = [b"", b"a", b"ab", b"abc", b"abcd", bytes(range(256)) * 4, b"host-a", b""]
    assert murmur2_batch(keys).tolist() == [murmur2(k) for k in keys]
