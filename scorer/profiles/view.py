"""The scorer's read-only view of the compacted profile topics.

One group-less consumer reads profile partitions from the beginning (a compacted topic holds
the latest value of every key) and keeps applying new records in the background. A record
replaces its key; a tombstone (expired or evicted at the job) deletes it. The view never
writes.

Which partitions (``profiles.partitions``): the job writes each profile to the partition
number of the events it covers, so by default (``assigned``) the view follows the scorer's
consumer group: on assignment it adds the profile partitions of the new input partitions
and reads them to their end *before* the rebalance completes (the scorer's rebalance
listener awaits it, so no batch of those partitions is scored against a profile still
loading), at most ``catch_up_timeout_s``; past that it logs, counts
``scorer_profile_view_catch_up_timeouts_total`` and scores with what it has (the missing
part reads as "never seen", the conservative reading), because holding the rebalance
longer risks the group's poll deadline and stalls every other partition too. On
revocation it drops those partitions and their keys. ``all`` reads every partition from
start-up, for topics that are not co-partitioned.

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
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge

from scorer.config import Settings
from scorer.events.structs import Event, EventKind
from scorer.kafka import admin_client, make_reader, read_to_end
from scorer.kafka.admin import topic_partitions
from scorer.profiles.schema import Profile, decode, topic_for
from scorer.shutdown import cancel_and_wait

log = logging.getLogger(__name__)


Entries = OrderedDict[str, tuple[int, Profile]]  # key -> (profile partition, latest value)


class _KindView:
    """One kind's keys (EDR and SIEM both have ``host`` keys: they must not meet)."""

    def __init__(self, data: Entries) -> None:
        self.data = data

    def get(self, key: str) -> Profile | None:
        entry = self.data.get(key)
        return None if entry is None else entry[1]

    def observe(self, kind: EventKind, events: Sequence[Event]) -> None:
        return None  # the stream job observes; the scorer only reads


class TopicProfileView:
    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        p = settings.profiles
        self.topics = {topic_for(p.topic_prefix, k): k for k in settings.kinds}
        inputs = settings.topics.input_topics(settings.kinds)
        self.profile_topic = {t: topic_for(p.topic_prefix, k) for t, k in inputs.items()}  # input -> profile
        self.follows_assignment = p.partitions == "assigned"
        self._data: dict[EventKind, Entries] = {k: OrderedDict() for k in settings.kinds}
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # a fetch and an assignment change never interleave
        self._known: dict[str, set[int]] = {}  # profile topic -> its partitions
        self.assigned: set[TopicPartition] = set()
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
        self.partitions = Gauge("scorer_profile_view_partitions", "Profile partitions read", registry=r)
        self.catch_up_timeouts = Counter("scorer_profile_view_catch_up_timeouts",
                                         "Partitions scored before their profiles were read to the end", registry=r)

    def source(self, kind: EventKind) -> _KindView:
        return _KindView(self._data[kind])

    def __len__(self) -> int:
        return sum(len(d) for d in self._data.values())

    async def start(self, follow: bool = True) -> None:
        """Start reading: every partition now (``all``), or those of each assignment later
        (``assigned``, through the rebalance hooks below). ``follow=False``: the caller
        drives :meth:`poll` / :meth:`catch_up`, e.g. a test."""
        self._consumer = make_reader(self.settings.kafka, "profiles")
        await self._consumer.start()
        for topic in self.topics:
            self._known[topic] = await self._partitions(topic, tries=50)
        if not self.follows_assignment:
            await self.add(TopicPartition(t, n) for t, parts in self._known.items() for n in sorted(parts))
        if follow:
            self._task = asyncio.create_task(self._follow(), name="profile-view")

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        """The scorer got input partitions: load their profile partitions before it scores them."""
        if self.follows_assignment:
            for topic, parts in self._known.items():
                if not parts:  # the job may have created it since
                    self._known[topic] = await self._partitions(topic, tries=1)
            await self.add(self._matching(assigned))

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        if self.follows_assignment:
            await self.remove(self._matching(revoked))

    def _matching(self, inputs: Iterable[TopicPartition]) -> list[TopicPartition]:
        """The profile partitions co-partitioned with these input partitions."""
        out = []
        for tp in inputs:
            topic = self.profile_topic.get(tp.topic)
            if topic is not None and tp.partition in self._known.get(topic, ()):
                out.append(TopicPartition(topic, tp.partition))
        return out

    async def add(self, parts: Iterable[TopicPartition]) -> bool:
        """Read ``parts`` from the beginning to their end of now (False: timed out)."""
        new = sorted(set(parts) - self.assigned)
        if not new:
            return True
        async with self._lock:
            self._assign(self.assigned | set(new))
            await self._consumer.seek_to_beginning(*new)
        timeout = self.settings.profiles.catch_up_timeout_s
        caught_up = await self.catch_up(timeout, new)
        if not caught_up:
            self.catch_up_timeouts.inc(len(new))
            log.warning("profile partitions %s not read to the end after %.0f s; scoring with what they have",
                        [f"{tp.topic}/{tp.partition}" for tp in new], timeout)
        log.info("profile view: %d keys, %d partitions", len(self), len(self.assigned))
        return caught_up

    async def remove(self, parts: Iterable[TopicPartition]) -> None:
        """Stop reading ``parts`` and forget their keys."""
        gone = set(parts) & self.assigned
        if not gone:
            return
        async with self._lock:
            self._assign(self.assigned - gone)
            for kind, data in self._data.items():
                numbers = {tp.partition for tp in gone if self.topics[tp.topic] is kind}
                for k in [k for k, (n, _) in data.items() if n in numbers]:
                    del data[k]
            for tp in gone:
                self._next.pop(tp, None)
        self._export()

    def _assign(self, parts: set[TopicPartition]) -> None:
        # assign() replaces the assignment and forgets positions: resume the kept partitions.
        self._consumer.assign(sorted(parts))
        for tp in parts & self.assigned:
            if tp in self._next:
                self._consumer.seek(tp, self._next[tp])
        self.assigned = parts
        self.partitions.set(len(parts))

    async def catch_up(self, timeout_s: float, parts: Iterable[TopicPartition] | None = None) -> bool:
        """Apply records until ``parts`` (default: all read) are at their end offsets of now
        (False: timed out)."""
        parts = list(self.assigned if parts is None else parts)
        # Partitions revoked meanwhile (their keys dropped) no longer count.
        return await read_to_end(self._consumer, parts, self.poll, timeout_s=timeout_s)

    async def _partitions(self, topic: str, tries: int) -> set[int]:
        # A topic the job has not created yet: wait briefly, then run without it (reads as empty).
        async with admin_client(self.settings.kafka) as admin:
            for _ in range(tries):
                if parts := (await topic_partitions(admin, [topic])).get(topic):
                    return set(parts)
                await asyncio.sleep(0.1)
        log.warning("profile topic %s does not exist; its profiles read as empty", topic)
        return set()

    async def poll(self, timeout_ms: int = 100, max_records: int = 50_000) -> int:
        """Apply one fetch of records; returns how many."""
        n = 0
        async with self._lock:
            if self.assigned:
                fetched = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
                n = sum(self._apply(tp, records) for tp, records in fetched.items() if tp in self.assigned)
        self._export()
        return n

    def _apply(self, tp: TopicPartition, records: list[Any]) -> int:
        kind = self.topics[tp.topic]
        data = self._data[kind]
        cap = self.settings.profiles.max_entries
        for r in records:
            k = r.key.decode("utf-8", "replace") if r.key is not None else ""
            data.pop(k, None)
            if r.value is not None:
                try:
                    data[k] = (tp.partition, decode(r.value))
                except msgspec.DecodeError:
                    log.warning("undecodable profile record %s/%d@%d", tp.topic, tp.partition, r.offset)
                    continue
                while len(self) > cap:
                    self._evict_one()
            self.last_record_ms = max(self.last_record_ms, r.timestamp)
        if records:
            self._next[tp] = records[-1].offset + 1
        self.applied.labels(kind.value).inc(len(records))
        return len(records)

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
                if not self.assigned:  # nothing to read until the scorer gets partitions
                    await asyncio.sleep(0.1)
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:  # a broken fetch must not kill the view: keep the last state, retry
                log.exception("profile view fetch failed; retrying")
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        if self._consumer is not None:
            await self._consumer.stop()
