"""Reading a compacted topic to its end: the latest record of every key is the state.

Used wherever state lives in a compacted topic: the control plane's desired states and
serving statuses (:mod:`scorer.lifecycle.control`), the scorer's profile view
(:mod:`scorer.profiles.view`) and the profile worker's restore (``streams.kafka``).

"Its end" is the end offset when reading starts: records produced meanwhile may or may not
be read, which is what a process that then keeps following the topic wants. A reader that
must see everything a transaction already wrote asks :func:`settled_end_offsets` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from scorer.config import KafkaSettings
from scorer.errors import KafkaUnavailable
from scorer.kafka.clients import make_reader

T = TypeVar("T")
Fetch = Callable[[int], Awaitable[object]]  # one fetch of at most N ms, its records applied
Apply = Callable[[TopicPartition, list[Any]], object]  # records of one partition, in order


async def assign_from_start(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Assign every partition of ``topic`` to the consumer, positioned at its beginning."""
    partitions = consumer.partitions_for_topic(topic)
    if partitions is None:
        await consumer._client.force_metadata_update()  # a topic created a moment ago
        partitions = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    if tps:
        await consumer.seek_to_beginning(*tps)
    return tps


def fetching(consumer: AIOKafkaConsumer, apply: Apply, *partitions: TopicPartition,
             max_records: int | None = None) -> Fetch:
    """A :data:`Fetch` that hands each partition's records to ``apply``."""
    async def fetch(timeout_ms: int) -> None:
        fetched = await consumer.getmany(*partitions, timeout_ms=timeout_ms, max_records=max_records)
        for tp, records in fetched.items():
            apply(tp, records)
    return fetch


async def behind(consumer: AIOKafkaConsumer, end: Mapping[TopicPartition, int]) -> bool:
    """True while the consumer has not read up to ``end`` on some partition it still reads
    (one unassigned meanwhile, e.g. revoked from a profile view, no longer counts)."""
    assigned = consumer.assignment()
    for tp, offset in end.items():
        if tp in assigned and await consumer.position(tp) < offset:
            return True
    return False


async def read_until(consumer: AIOKafkaConsumer, end: Mapping[TopicPartition, int], fetch: Fetch, *,
                     timeout_s: float | None = None, fetch_ms: int = 200) -> bool:
    """Call ``fetch`` until the consumer's position reaches ``end`` on every partition
    (False: ``timeout_s`` passed first)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while await behind(consumer, end):
        if deadline is not None and time.monotonic() > deadline:
            return False
        await fetch(fetch_ms)
    return True


async def read_to_end(consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition], fetch: Fetch, *,
                      timeout_s: float | None = None) -> bool:
    """Read ``partitions`` from the consumer's positions up to their end offsets of now."""
    tps = list(partitions)
    end = await consumer.end_offsets(tps) if tps else {}
    return await read_until(consumer, end, fetch, timeout_s=timeout_s)


async def poll_until(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, stall_s: float,
                     every_s: float = 0.1) -> T | None:
    """``probe()`` until ``done`` holds of its value (returned); None once the value stopped
    changing for ``stall_s``. A wait on observed progress: a slow machine waits longer, a stuck
    one gives up."""
    seen: T | None = None
    moved = time.monotonic()
    while not done(value := await probe()):
        if value != seen:
            seen, moved = value, time.monotonic()
        elif time.monotonic() - moved > stall_s:
            return None
        await asyncio.sleep(every_s)
    return value


async def settled_end_offsets(kafka: KafkaSettings, partitions: Iterable[TopicPartition], *,
                              stall_s: float) -> dict[TopicPartition, int] | None:
    """The end offsets a read_committed reader reaches once every transaction already written
    to ``partitions`` is decided (None: the last stable offset stalled short of it for ``stall_s``).

    A read_committed end is the last stable offset: it stops before the first undecided
    transaction. A transaction's offsets commit is visible (``__consumer_offsets`` has its
    marker) before the markers of its output partitions may be: the coordinator writes them
    all after answering EndTxn. So the end taken right after a commit is seen can still stop
    before that commit's records. Those are in the high watermark already (acks=all), so
    waiting for the last stable offset to pass the high watermark of now decides them.
    """
    tps = list(partitions)
    if not tps:
        return {}
    stable = make_reader(kafka, "stable-ends")
    written = make_reader(kafka, "written-ends", isolation_level="read_uncommitted")
    try:
        await stable.start()
        await written.start()
        high = await written.end_offsets(tps)
        ends = await poll_until(lambda: stable.end_offsets(tps), lambda e: all(e[tp] >= high[tp] for tp in tps),
                                stall_s=stall_s)
    finally:
        await asyncio.gather(stable.stop(), written.stop())
    return None if ends is None else dict(ends)


def decode_into(out: dict[str, tuple[int, T]], key: bytes | None, value: bytes | None, offset: int,
                type_: type[T]) -> None:
    """Fold one JSON record into ``out`` (key -> (offset, value)); a tombstone deletes, junk
    is skipped."""
    if key is None:
        return
    name = key.decode("utf-8", "replace")
    if value is None:
        out.pop(name, None)
        return
    with contextlib.suppress(msgspec.DecodeError):  # a hand-written record: ignored, never fatal
        out[name] = (offset, msgspec.json.decode(value, type=type_))


async def read_latest(kafka: KafkaSettings, topic: str, type_: type[T], *, role: str,
                      timeout_s: float = 10.0) -> dict[str, tuple[int, T]]:
    """Key -> (offset, latest value) of a compacted topic of JSON records, read from its
    start to its end. :class:`KafkaUnavailable` when the broker does not answer or the end
    is not reached within ``timeout_s``."""
    consumer = make_reader(kafka, role, fetch_max_wait_ms=200)
    try:
        await asyncio.wait_for(consumer.start(), timeout_s)
    except (OSError, TimeoutError, KafkaError) as exc:  # unreachable, refused, no bootstrap
        await consumer.stop()
        detail = str(exc) if isinstance(exc, KafkaError) else repr(exc)  # aiokafka's str names the class
        raise KafkaUnavailable(f"kafka at {kafka.bootstrap_servers}: {detail}") from None
    out: dict[str, tuple[int, T]] = {}

    def fold(tp: TopicPartition, records: list[Any]) -> None:
        for m in records:
            decode_into(out, m.key, m.value, m.offset, type_)

    try:
        tps = await assign_from_start(consumer, topic)
        if not await read_to_end(consumer, tps, fetching(consumer, fold), timeout_s=timeout_s):
            raise KafkaUnavailable(f"{topic}: not read to its end within {timeout_s:.0f}s")
    finally:
        await consumer.stop()
    return out
