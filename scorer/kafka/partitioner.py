"""Kafka's default key -> partition placement (murmur2), for a whole batch of keys at once.

aiokafka's ``murmur2`` is pure Python, about 5 µs a key: at 25,000 outputs a second that is
an eighth of a core. Hashing every key of a batch with numpy at once gives the same
partitions as the Java client and as ``send()`` (tests compare them on random keys) for a
fraction of the cost. A producer's partitions per topic are kept between batches
(:func:`known_partitions`), following its cluster metadata.

>>> partitions_of([b"10.0.0.1", b"host-a"], 3) == [
...     (murmur2(k) & 0x7FFFFFFF) % 3 for k in (b"10.0.0.1", b"host-a")]
True
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

import scorer.native

__all__ = ["known_partitions", "murmur2", "murmur2_batch", "partitions_of", "partitions_via"]

_SEED = np.uint32(0x9747B28C)
_M = np.uint32(0x5BD1E995)


def murmur2_batch(keys: Sequence[bytes]) -> npt.NDArray[np.uint32]:
    """murmur2 of every key, in input order.

    All keys at once, whatever their lengths: each key zero-padded to a row of 4-byte words
    (one more than the longest key's whole words), the words' mixes computed together, each
    row's hash stepped through them while the word is whole for it, then its last partial
    word (the padding's zeros make it the little-endian tail murmur2 reads). A pass per key
    length cost ~20 numpy calls per distinct length: at 50-record batches (uids and hosts of
    several lengths) more than the hashing (docs/benchmarks.md section 21)."""
    n = len(keys)
    if n == 0:
        return np.empty(0, dtype=np.uint32)
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=n)
    whole = lengths >> 2
    width = int(whole.max()) + 1  # words per row, the partial one included
    padded = b"".join([key.ljust(width * 4, b"\0") for key in keys])
    words = np.frombuffer(padded, dtype="<u4").reshape(n, width)
    h = _SEED ^ lengths.astype(np.uint32)
    if width > 1:
        k = words[:, :-1] * _M  # uint32 arithmetic wraps like Java's int
        k ^= k >> np.uint32(24)
        k *= _M
        for i in range(width - 1):
            h = np.where(whole > i, (h * _M) ^ k[:, i], h)
    h ^= words[np.arange(n), whole]  # the tail: zero where the key has none
    h = np.where(lengths & 3 != 0, h * _M, h)
    h ^= h >> np.uint32(13)
    h *= _M
    h ^= h >> np.uint32(15)
    return h


def partitions_of(keys: Sequence[bytes], n_partitions: int) -> list[int]:
    """Index into the sorted partition list that Kafka's default partitioner picks per key.

    In C where built (``scorer.native._native.partitions``, ~0.05 µs a key): the numpy
    reference costs ~20 array calls a batch, 5-7% of the CPU of 50-record batches."""
    native = scorer.native.module()
    if native is not None:
        return native.partitions(keys, n_partitions)  # type: ignore[no-any-return]
    placed: list[int] = ((murmur2_batch(keys) & np.uint32(0x7FFFFFFF)).astype(np.int64) % n_partitions).tolist()
    return placed


class _Known:
    """A producer's partitions per topic, kept from one call to the next: asking the producer
    is a coroutine per topic, and place() would run twice per batch to learn which topics it
    needs. Its cluster metadata is the truth: every metadata update (a topic that grew
    partitions, one deleted and made again; at least every ``metadata_max_age_ms``) starts an
    empty table, and a topic not in it is asked for (``partitions_for`` waits on metadata)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.parts: dict[str, list[int]] = {}
        cluster = getattr(getattr(producer, "client", None), "cluster", None)
        if cluster is not None:  # anything else that places records has no metadata to follow
            cluster.add_listener(self._forget)

    def _forget(self, _cluster: Any) -> None:
        # A new table, not clear(): a place() call holding the old one reads it consistently.
        self.parts = {}


_KNOWN: weakref.WeakKeyDictionary[AIOKafkaProducer, _Known] = weakref.WeakKeyDictionary()


def known_partitions(producer: AIOKafkaProducer) -> dict[str, list[int]]:
    """The partitions known for ``producer``, per topic."""
    known = _KNOWN.get(producer)
    if known is None:
        known = _KNOWN[producer] = _Known(producer)
    return known.parts


async def partitions_via(producer: AIOKafkaProducer, topic: str) -> list[int]:
    """``topic``'s sorted partitions, known or asked for, then kept in the table current after
    the wait (asking may update the metadata, which starts a new one)."""
    found = known_partitions(producer).get(topic)
    if found is None:
        found = known_partitions(producer)[topic] = sorted(await producer.partitions_for(topic))
    return found
