"""The scorer's read-only view of the compacted profile topics.

One group-less consumer reads every partition of ``<prefix><kind>`` from the beginning (a
compacted topic holds the latest value of every key), catches up to the end before the
scorer starts, then keeps applying new records in the background. A record replaces its
key; a tombstone (expired or evicted at the job) deletes it. The view never writes.

Staleness: a profile record is produced by the job within one of its micro-batches of the
events it covers, and applied here as soon as the scoring loop yields. The join reads only
the past of each event (see :mod:`scorer.profiles.join`), so a view that is *ahead* of the
scorer is exact; a view that is *behind* misses at most the events the job has not
published yet: ``scorer_profile_view_behind_records`` and ``..._age_seconds`` say how far.

Memory: at most ``max_entries`` keys over all kinds; beyond that the least recently
written key is dropped (it then reads as "never seen", the conservative reading).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry, Counter, Gauge

from scorer.config import Settings
from scorer.events.structs import Event, EventKind
from scorer.pipeline.kafka_io import security_options
from scorer.profiles.schema import Profile, decode, topic_for

log = logging.getLogger(__name__)


class _KindView:
    """One kind's keys (EDR and SIEM both have ``host`` keys: they must not meet)."""

    def __init__(self, data: OrderedDict[str, Profile]) -> None:
        self.data = data

    def get(self, key: str) -> Profile | None:
        return self.data.get(key)

    def observe(self, kind: EventKind, events: Sequence[Event]) -> None:
        return None  # the stream job observes; the scorer only reads


class TopicProfileView:
    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        p = settings.profiles
        self.topics = {topic_for(p.topic_prefix, k): k for k in settings.kinds}
        self._data: dict[EventKind, OrderedDict[str, Profile]] = {k: OrderedDict() for k in settings.kinds}
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._next: dict[TopicPartition, int] = {}  # next offset to apply, per partition
        self.last_record_ms = 0
        r = registry or CollectorRegistry()
        self.entries = Gauge("scorer_profile_view_entries", "Profile keys held by the view", ["kind"], registry=r)
        self.applied = Counter("scorer_profile_view_applied", "Profile records applied", ["kind"], registry=r)
        self.evicted = Counter("scorer_profile_view_evicted", "Keys dropped at max_entries", registry=r)
        self.behind = Gauge("scorer_profile_view_behind_records",
                            "Profile records published but not yet applied", registry=r)
        self.age = Gauge("scorer_profile_view_age_seconds",
                         "Now minus the publish time of the newest profile record applied", registry=r)

    def source(self, kind: EventKind) -> _KindView:
        return _KindView(self._data[kind])

    def __len__(self) -> int:
        return sum(len(d) for d in self._data.values())

    async def start(self, follow: bool = True) -> None:
        """Assign every partition, read to the end offsets of now, then follow in the background
        (``follow=False``: the caller drives :meth:`poll` / :meth:`catch_up`, e.g. a test)."""
        kafka = self.settings.kafka
        self._consumer = AIOKafkaConsumer(
            client_id=f"{kafka.client_id}-profiles",
            group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
            max_partition_fetch_bytes=kafka.max_partition_fetch_bytes, **security_options(kafka),
        )
        await self._consumer.start()
        parts = []
        for topic in self.topics:
            found = await self._partitions(topic)
            parts += [TopicPartition(topic, p) for p in sorted(found)]
        self._consumer.assign(parts)
        await self._consumer.seek_to_beginning(*parts)
        if not await self.catch_up(self.settings.profiles.catch_up_timeout_s):
            log.warning("profile view not caught up after %.0f s; scoring with what it has",
                        self.settings.profiles.catch_up_timeout_s)
        log.info("profile view: %d keys from %s", len(self), sorted(self.topics))
        if follow:
            self._task = asyncio.create_task(self._follow(), name="profile-view")

    async def catch_up(self, timeout_s: float) -> bool:
        """Apply records until every partition is at its end offset of now (False: timed out)."""
        parts = list(self._consumer.assignment())
        if not parts:
            return True
        ends = await self._consumer.end_offsets(parts)
        deadline = time.monotonic() + timeout_s
        while await self._behind_ends(ends):
            if time.monotonic() > deadline:
                return False
            await self.poll(timeout_ms=200)
        return True

    async def _behind_ends(self, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await self._consumer.position(tp) < end:
                return True
        return False

    async def _partitions(self, topic: str) -> set[int]:
        # A topic the job has not created yet: wait briefly, then run without it (reads as empty).
        admin = AIOKafkaAdminClient(**security_options(self.settings.kafka))
        await admin.start()
        try:
            for _ in range(50):
                (described,) = await admin.describe_topics([topic])
                if described.get("error_code", 0) == 0 and described.get("partitions"):
                    return {int(p["partition"]) for p in described["partitions"]}
                await asyncio.sleep(0.1)
        finally:
            await admin.close()
        log.warning("profile topic %s does not exist; its profiles read as empty", topic)
        return set()

    async def poll(self, timeout_ms: int = 100) -> int:
        """Apply one fetch of records; returns how many."""
        fetched = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=50_000)
        cap = self.settings.profiles.max_entries
        n = 0
        for tp, records in fetched.items():
            kind = self.topics[tp.topic]
            data = self._data[kind]
            for r in records:
                k = r.key.decode("utf-8", "replace") if r.key is not None else ""
                data.pop(k, None)
                if r.value is not None:
                    try:
                        data[k] = decode(r.value)
                    except msgspec.DecodeError:
                        log.warning("undecodable profile record %s/%d@%d", tp.topic, tp.partition, r.offset)
                        continue
                    while len(self) > cap:
                        self._evict_one()
                self.last_record_ms = max(self.last_record_ms, r.timestamp)
            if records:
                self._next[tp] = records[-1].offset + 1
            self.applied.labels(kind.value).inc(len(records))
            n += len(records)
        self._export()
        return n

    def _evict_one(self) -> None:
        largest = max(self._data.values(), key=len)
        largest.popitem(last=False)
        self.evicted.inc()

    def _export(self) -> None:
        for kind, data in self._data.items():
            self.entries.labels(kind.value).set(len(data))
        if self.last_record_ms:
            self.age.set(max(time.time() - self.last_record_ms / 1000, 0.0))
        behind = 0
        for tp, next_offset in self._next.items():
            high = self._consumer.highwater(tp)
            behind += max((high or 0) - next_offset, 0)
        self.behind.set(behind)

    async def _follow(self) -> None:
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:  # a broken fetch must not kill the view: keep the last state, retry
                log.exception("profile view fetch failed; retrying")
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
