"""``getmany()`` without a ``ConsumerRecord`` per record: the fetched record batches built
into the caller's rows a whole batch at a time.

aiokafka turns every fetched record into a ``ConsumerRecord`` through a generator, a Python
call and a dataclass ``__init__`` (``PartitionRecords._unpack_records``), and ``getmany()``
appends them one by one; the scoring loop then builds its own record from each. That was
~1 µs a record of a drain's CPU (docs/benchmarks.md section 32). :func:`fetch_rows` does
what ``getmany()`` does, over the same fetcher state (positions, aborted transactions,
control batches, CRC checks, ``max_records``), but hands each record batch to ``build``,
which makes the caller's rows in one comprehension.

That state is aiokafka's private code. The code mirrored here (:data:`MIRRORED`) is checked
once, at import, against the digest of the aiokafka version it was written for
(:data:`KNOWN`); any other version, a consumer with deserializers, or anything that is not
an ``AIOKafkaConsumer`` takes the public ``getmany()`` instead (:func:`refused` says why).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import aiokafka
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer import fetcher as _fetcher
from aiokafka.errors import ConsumerStoppedError, CorruptRecordException
from aiokafka.record.memory_records import DefaultRecordBatch

log = logging.getLogger(__name__)


class Row(Protocol):
    """What a built row must tell: its record's offset (the position moves past it)."""

    @property
    def offset(self) -> int: ...


# The records of one batch -> rows, in offset order, one per record; each record has
# ``offset``, ``timestamp`` (None when unset), ``key``, ``value``, ``headers``.
BuildBatch = Callable[[Iterable[Any]], Sequence[Row]]
# (topic, partition) -> that partition's BuildBatch: made once per fetched partition, so a
# record batch costs one call (a batch may hold a single record: a quiet producer's).
Build = Callable[[str, int], BuildBatch]

# The aiokafka code fetch_rows() stands in for: a change to any of it turns the fast path off.
MIRRORED = (
    AIOKafkaConsumer.getmany, _fetcher.Fetcher.fetched_records, _fetcher.FetchResult.getall,
    _fetcher.PartitionRecords._unpack_records, _fetcher.PartitionRecords._consumer_record,
    _fetcher.PartitionRecords._consume_aborted_up_to,
)
KNOWN = {"0.14.0": "b20f5c7ceacb3f59"}
_STATE = "_scorer_rows"
_HELD = "_scorer_fetch_held"  # on the Fetcher: a partition read to the end, its routine not woken yet


def shape_digest(mirrored: Sequence[Callable[..., Any]] = MIRRORED) -> str | None:
    """A digest of the installed aiokafka's source of ``mirrored`` (None: not readable)."""
    try:
        source = "".join(inspect.getsource(f) for f in mirrored)
    except (OSError, TypeError):
        return None
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def private_refusal(what: str, mirrored: Sequence[Callable[..., Any]], known: dict[str, str]) -> str | None:
    """Why ``what``, which stands in for aiokafka's private code ``mirrored``, cannot run on
    the installed aiokafka (None: it can): its version, or its source's digest, unknown."""
    version = aiokafka.__version__
    if version not in known:
        return f"aiokafka {version} is not one {what} was checked against ({', '.join(known)})"
    if shape_digest(mirrored) != known[version]:
        return f"aiokafka {version}'s source is not the one {what} mirrors"
    return None


_REFUSED = private_refusal("the fast fetch", MIRRORED, KNOWN)
if _REFUSED is not None:
    log.info("consuming through getmany(): %s", _REFUSED)


def refused(consumer: Any) -> str | None:
    """Why :func:`fetch_rows` would take the public ``getmany()`` for ``consumer``, or None."""
    if _REFUSED is not None:
        return _REFUSED
    if not isinstance(consumer, AIOKafkaConsumer):
        return f"{type(consumer).__name__} is not an AIOKafkaConsumer"
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None:
        return "the consumer is not started"
    if fetcher._key_deserializer is not None or fetcher._value_deserializer is not None:
        return "the consumer deserializes keys or values"
    return None


async def fetch_rows(consumer: Any, build: Build, *, timeout_ms: int, max_records: int,
                     hold_below: int = 0, release: bool = True) -> dict[TopicPartition, Any]:
    """``consumer.getmany(timeout_ms=..., max_records=...)`` with each partition's records
    built by ``build`` (a list of rows per partition, in offset order). Where :func:`refused`
    gives a reason, the public ``getmany()``'s ``ConsumerRecord`` lists instead.

    ``hold_below``: when fewer rows than this are returned, the next fetch request for the
    partitions read to the end waits for the next call (or :func:`release_fetch`) instead of
    going out at the caller's next await. aiokafka builds and encodes that request in Python
    (~0.1-0.2 ms on the dev box, docs/benchmarks.md section 36); a light load's next records
    are not at the broker yet, so sent after the batch's outputs it costs that batch nothing.
    A larger batch lets it go at once: the next records then arrive while it is scored.
    ``release``: whether a request held by the previous call goes now (False: it waits for
    :func:`release_fetch`, e.g. until the previous batch's outputs are acknowledged)."""
    if refused(consumer) is not None:
        return await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)  # type: ignore[no-any-return]
    # AIOKafkaConsumer.getmany():
    if consumer._closed:
        raise ConsumerStoppedError()
    if max_records < 1:
        raise ValueError("`max_records` must be a positive Integer")
    consumer._coordinator.check_errors()
    fetcher = consumer._fetcher
    if release:
        _wake(fetcher)  # a fetch held by the previous call goes now at the latest
    with consumer._subscription.fetch_context():
        drained = await _fetched(fetcher, build, timeout_ms / 1000, max_records, release)
    if sum(map(len, drained.values())) >= hold_below:
        _wake(fetcher)  # (nothing when none is held)
    return drained


def release_fetch(consumer: Any) -> None:
    """Let the fetch requests held by :func:`fetch_rows` (``hold_below``) go: aiokafka's fetch
    routine wakes at the caller's next await. Nothing when none is held."""
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is not None:
        _wake(fetcher)


def fetch_in_flight(consumer: Any) -> bool:
    """Whether a fetch request of ``consumer`` may be on the wire, its answer due (True where
    it cannot be told: the public ``getmany()`` path, a consumer not started)."""
    fetcher = getattr(consumer, "_fetcher", None)
    in_flight = getattr(fetcher, "_in_flight", None)  # the node ids aiokafka's fetch routine awaits
    return _REFUSED is not None or in_flight is None or bool(in_flight)


def _wake(fetcher: Any) -> None:
    if fetcher.__dict__.pop(_HELD, False):
        fetcher._notify(fetcher._wait_consume_future)


async def _fetched(fetcher: Any, build: Build, timeout: float, max_records: int,
                   release: bool) -> dict[TopicPartition, Any]:
    """Fetcher.fetched_records() of every partition, FetchResult.getall() being _take(); the
    fetch routine's wake-up for a partition read to the end is held (:func:`release_fetch`)."""
    while True:
        # Not while a rebalance is assigning: records may no longer be ours.
        if fetcher._subscriptions.reassignment_in_progress:
            await fetcher._subscriptions.wait_for_assignment()
        start_time = time.monotonic()
        drained: dict[TopicPartition, Any] = {}
        for tp in list(fetcher._records.keys()):
            result = fetcher._records[tp]
            if type(result) is _fetcher.FetchResult:
                rows = _take(result, tp, build, max_records)
                if not result.has_more():  # all read: the next fetch for it may go
                    del fetcher._records[tp]
                    fetcher.__dict__[_HELD] = True
                if not rows:
                    continue
                drained[tp] = rows
                max_records -= len(rows)
                if max_records == 0:
                    break
            elif drained:  # an error: raised by the next call, after these records
                return drained
            else:
                del fetcher._records[tp]
                fetcher._notify(fetcher._wait_consume_future)
                result.check_raise()
        if drained or not timeout:
            return drained
        if release:
            _wake(fetcher)  # nothing to return: the next fetch goes before waiting for it
        waiter = fetcher._create_fetch_waiter()
        done, pending = await asyncio.wait([waiter], timeout=timeout)
        if not done or fetcher._closed:
            if pending:
                pending.pop().cancel()
            return {}
        if waiter.done():
            waiter.result()  # authorization errors
        timeout = max(0.0, timeout - (time.monotonic() - start_time))


def _take(result: Any, tp: TopicPartition, build: Build, max_records: int) -> Any:
    """FetchResult.getall(max_records), built by ``build``."""
    if not result.check_assignment(tp) or not result.has_more():
        return []
    records = result._partition_records
    rows: _Rows | None = records.__dict__.get(_STATE)
    if rows is None:
        started = records._records_iterator
        if started is None or inspect.getgeneratorstate(started) != inspect.GEN_CREATED:
            # Partly read through the public path already: it finishes this fetch.
            return result.getall(max_records)
        rows = _Rows(tp, build)
        records.__dict__[_STATE] = rows
        records._records_iterator = _ReadHere()  # never half-read by both paths
    taken, exhausted = rows.take(records, max_records)
    result._update_position()
    if exhausted:
        result._partition_records = None
    return taken


class _ReadHere:
    """In place of PartitionRecords' generator once :func:`fetch_rows` reads it."""

    def __next__(self) -> Any:
        raise RuntimeError("these fetched records are read by scorer.kafka.fetch.fetch_rows, not getmany()")


class _Rows:
    """One PartitionRecords read a record batch at a time: the rows of the batch being handed
    out, and where its position goes once they all are. It holds no reference to the
    PartitionRecords (that holds this): no reference cycle keeps a fetch's buffer alive."""

    def __init__(self, tp: TopicPartition, build: Build) -> None:
        self.topic, self.partition, self.build = tp.topic, tp.partition, build(tp.topic, tp.partition)
        self.pending: Sequence[Row] = ()
        self.at = 0
        self.after: int | None = None  # the position once ``pending`` is handed out
        self.failed = False  # a corrupt batch: the rest is fetched again from the position

    def take(self, records: Any, max_records: int) -> tuple[list[Row], bool]:
        """Up to ``max_records`` rows, and whether the fetch is all read. The position moves
        as PartitionRecords._unpack_records() moves it: past each record handed out, past a
        batch once all its records are."""
        out: list[Row] = []
        while True:
            if self.at < len(self.pending):
                chunk = self.pending[self.at:self.at + max_records - len(out)]
                self.at += len(chunk)
                out += chunk
                records.next_fetch_offset = chunk[-1].offset + 1
                if len(out) >= max_records:
                    return out, False
            if self.failed:
                return out, True
            if self.after is not None:
                records.next_fetch_offset, self.after = self.after, None
            try:
                batch = self._next_batch(records)
                if batch is None:
                    return out, True
                position = records.next_fetch_offset
                self.pending = self.build(batch if type(batch) is DefaultRecordBatch and batch.base_offset >= position
                                          else _from(batch, position))
                self.at = 0
            except CorruptRecordException:
                self.failed = True
                raise
            self.after = batch.next_offset

    def _next_batch(self, records: Any) -> Any:
        """The next batch with records to hand out; aborted and control batches moved past."""
        batches = records._records
        while batches.has_next():
            batch = batches.next_batch()
            if records._check_crcs and not batch.validate_crc():
                raise CorruptRecordException(f"Invalid CRC - {TopicPartition(self.topic, self.partition)}")
            if records._isolation_level == _fetcher.READ_COMMITTED and batch.producer_id is not None:
                if records._aborted_transactions:  # (_consume_aborted_up_to moves nothing otherwise)
                    records._consume_aborted_up_to(batch.base_offset)
                if batch.is_control_batch and records._contains_abort_marker(batch):
                    records._aborted_producers.discard(batch.producer_id)
                if batch.is_transactional and batch.producer_id in records._aborted_producers:
                    records.next_fetch_offset = batch.next_offset
                    continue
            if batch.is_control_batch:
                records.next_fetch_offset = batch.next_offset
                continue
            return batch
        return None


def _from(batch: Any, position: int) -> Iterable[Any]:
    """The batch's records at or after ``position``: a fetch starts at the batch holding it
    (and a compressed legacy message set holds earlier ones). (``take`` hands on a whole v2
    batch at or after the position itself.)"""
    return (r for r in batch if r.offset >= position)
