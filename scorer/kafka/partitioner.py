"""Kafka's default key -> partition placement (murmur2), for a whole batch of keys at once.

aiokafka's ``murmur2`` is pure Python, about 5 µs a key: at 25,000 outputs a second that is
an eighth of a core. Hashing every key of a batch with numpy, grouped by key length, gives
the same partitions as the Java client and as ``send()`` (tests compare them on random
keys) for a fraction of the cost.

>>> partitions_of([b"10.0.0.1", b"host-a"], 3).tolist() == [
...     (murmur2(k) & 0x7FFFFFFF) % 3 for k in (b"10.0.0.1", b"host-a")]
True
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from aiokafka.partitioner import murmur2

__all__ = ["murmur2", "murmur2_batch", "partitions_of"]

_SEED = np.uint32(0x9747B28C)
_M = np.uint32(0x5BD1E995)


def _hash_same_length(keys: Sequence[bytes], length: int) -> npt.NDArray[np.uint32]:
    n = len(keys)
    data = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(n, length)
    h = np.full(n, _SEED ^ np.uint32(length), dtype=np.uint32)
    n_words = length // 4
    if n_words:
        words = np.ascontiguousarray(data[:, : n_words * 4]).view("<u4")
        for i in range(n_words):
            k = words[:, i] * _M  # uint32 arithmetic wraps like Java's int
            k ^= k >> np.uint32(24)
            k *= _M
            h *= _M
            h ^= k
    tail = data[:, n_words * 4 :].astype(np.uint32)
    extra = length % 4
    if extra >= 3:
        h ^= tail[:, 2] << np.uint32(16)
    if extra >= 2:
        h ^= tail[:, 1] << np.uint32(8)
    if extra >= 1:
        h ^= tail[:, 0]
        h *= _M
    h ^= h >> np.uint32(13)
    h *= _M
    h ^= h >> np.uint32(15)
    return h


def murmur2_batch(keys: Sequence[bytes]) -> npt.NDArray[np.uint32]:
    """murmur2 of every key, in input order."""
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        by_length[len(key)].append(i)
    out = np.empty(len(keys), dtype=np.uint32)
    for length, rows in by_length.items():
        out[rows] = _hash_same_length([keys[i] for i in rows], length)
    return out


def partitions_of(keys: Sequence[bytes], n_partitions: int) -> npt.NDArray[np.int64]:
    """Index into the sorted partition list that Kafka's default partitioner picks per key."""
    return (murmur2_batch(keys) & np.uint32(0x7FFFFFFF)).astype(np.int64) % n_partitions
