"""Paced event streams with hostile records mixed in, reading outputs back, and the ledger
that proves every good input ended as a score (with its alert) and every hostile one as a
dead letter (by uid)."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from scorer.events.structs import EventKind
from scorer.pipeline.deadletter import header_dict
from tests.support.faults.process import Topics
from tests.support.samples import SAMPLES


class Record(NamedTuple):
    kind: EventKind
    key: bytes
    value: bytes
    uid: str
    bad: bool = False  # hostile by construction: must be dead-lettered, never scored


BAD_EVERY = 40  # one hostile record in 40: dead letters are part of "nothing lost"
_UID_IN_BYTES = re.compile(rb'"uid":\s*"([^"]+)"')


# --------------------------------------------------------------------------- streams and the ledger
def make_stream(kinds: Sequence[EventKind], tag: str, per_kind: int, *, pad: int = 0) -> list[Record]:
    """``per_kind`` real events of each kind with unique uids, interleaved, with one hostile
    record in BAD_EVERY (truncated JSON or a missing field) that must be dead-lettered.
    ``pad`` adds an unknown field of that many bytes to every event (big records)."""
    per = [list(itertools.islice(_kind_records(kind, tag, pad), per_kind)) for kind in kinds]
    return [r for group in itertools.zip_longest(*per) for r in group if r is not None]


def endless_stream(kinds: Sequence[EventKind], tag: str, *, pad: int = 0) -> Iterator[Record]:
    """:func:`make_stream`'s records without end, made lazily: its first ``n`` are always
    the same (``itertools.islice(endless_stream(...), n)`` rebuilds what a feed sent), and
    ``make_stream(kinds, tag, k)`` is its first ``k * len(kinds)``. For a feed that stops
    on an event of the test (see :func:`feed`'s ``until``) rather than at a fixed count."""
    per = [_kind_records(kind, tag, pad) for kind in kinds]
    while per:
        for records in list(per):
            record = next(records, None)
            if record is None:  # a kind without samples
                per.remove(records)
            else:
                yield record


def _kind_records(kind: EventKind, tag: str, pad: int) -> Iterator[Record]:
    sample = SAMPLES[kind]()
    for i, (uid, key, value) in enumerate(itertools.cycle(sample)):
        new_uid = f"{uid}#{tag}{i}"
        if i % BAD_EVERY == BAD_EVERY - 1:
            hostile = (b'{"uid": "%s", "ts": ' if i % 2 else b'{"uid": "%s", "x": 1}') % new_uid.encode()
            yield Record(kind, key, hostile, new_uid, bad=True)
            continue
        doc = json.loads(value)
        doc["uid"] = new_uid
        if pad:
            doc["Pad"] = "p" * pad
        yield Record(kind, key, json.dumps(doc).encode(), new_uid)


async def feed(
    client: dict[str, Any], topics: Topics, records: Iterable[Record], *, rate: float,
    progress: list[int] | None = None, until: asyncio.Event | None = None,
    producer_class: type[AIOKafkaProducer] = AIOKafkaProducer,
) -> int:
    """Produce ``records`` at about ``rate`` per second (acks=all, idempotent, retried across
    broker restarts); ``progress[0]`` counts what was acknowledged so far; returns how many
    were produced (the first that many of ``records``).

    ``until``: stop once it is set, after one more chunk (rate / 10 records) begun after it
    was set, or when ``records`` run out (they may be endless then: :func:`endless_stream`).
    A test that sets it after its last fault so knows the stream outlived every fault,
    with records the scorer cannot have seen before it, whatever the machine's speed.
    ``producer_class``: an upstream producer of the test's choosing (a subclass)."""
    producer = producer_class(**client, acks="all", enable_idempotence=True, linger_ms=5,
                                request_timeout_ms=60_000, retry_backoff_ms=200)
    await producer.start()
    chunk = max(1, int(rate / 10))
    sent = 0
    source = iter(records)
    last = False
    try:
        while not last:
            last = until is not None and until.is_set()
            started = time.monotonic()
            futures = [await producer.send(topics.input(r.kind), r.value, key=r.key)
                       for r in itertools.islice(source, chunk)]
            if not futures:
                break
            await asyncio.gather(*futures)
            sent += len(futures)
            if progress is not None:
                progress[0] = sent
            await asyncio.sleep(max(0.0, chunk / rate - (time.monotonic() - started)))
    finally:
        await producer.stop()
    return sent


async def read_topics(
    client: dict[str, Any], names: Iterable[str], done: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    *, timeout: float = 90.0, isolation: str = "read_committed", settle: float = 1.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything on ``names`` from the beginning until ``done(records)`` holds and then
    ``settle`` more seconds with nothing new (so late duplicates are seen too). Gives up only
    after ``timeout`` seconds in which nothing new arrived: a slow machine that still makes
    progress is waited for, a stalled scorer is not."""
    consumer = AIOKafkaConsumer(*names, **client, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False, isolation_level=isolation)
    await consumer.start()
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        progress = time.monotonic()
        quiet_since: float | None = None
        while time.monotonic() - progress < timeout:
            batch = await consumer.getmany(timeout_ms=200)
            got = [m for msgs in batch.values() for m in msgs]
            out.extend(got)
            if got:
                progress = time.monotonic()
            if got or not done(out):
                quiet_since = None
                continue
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                break
    finally:
        await consumer.stop()
    return out


def uid_in_bytes(m: ConsumerRecord[bytes, bytes]) -> str:
    """A dead letter's event uid, read from its original bytes (the streams' hostile records
    keep their uid readable on purpose)."""
    found = _UID_IN_BYTES.search(m.value or b"")
    return found.group(1).decode() if found else f"?{m.partition}:{m.offset}"


@dataclass
class Ledger:
    """What went in against what came out, from outside the scorer.

    Every hostile record (``bad``, known by construction) must come out as a dead letter
    with a reason and every other one (``good``) as a score, plus its alert when that score
    alerted: a scorer that dead-letters good events during a fault fails here, it is not
    "accounted for". Scores are matched by uid, dead letters by ``dead_letter_id``.
    """

    good: set[str]
    bad: set[str]
    topics: Topics
    dead_letter_id: Callable[[ConsumerRecord[bytes, bytes]], str] = uid_in_bytes
    _tally: Tally | None = field(default=None, init=False, repr=False)

    @classmethod
    def of(cls, records: Iterable[Record], topics: Topics) -> Ledger:
        records = list(records)
        return cls({r.uid for r in records if not r.bad}, {r.uid for r in records if r.bad}, topics)

    def tally(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> Tally:
        tally = Tally(self.topics, self.dead_letter_id)
        tally.add(records)
        return tally

    def complete(self, records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        """Every input has an outcome (``read_topics``'s stop condition; whether it is the
        right outcome is :meth:`report`'s business, so a misrouted event fails fast)."""
        # read_topics passes one growing list: only the records new since the last call are parsed.
        if self._tally is None or self._tally.parsed > len(records):
            self._tally = Tally(self.topics, self.dead_letter_id)
        self._tally.add(records[self._tally.parsed:])
        outcome = self._tally.scored.keys() | self._tally.dead.keys()
        return self.good <= outcome and self.bad <= outcome

    def report(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> LedgerReport:
        t = self.tally(records)
        expected = self.good | self.bad
        outcome = t.scored.keys() | t.dead.keys()
        alerting = {u for u, n in t.alerting.items() if n}
        both = t.scored + t.dead
        return LedgerReport(
            inputs=len(expected),
            lost=sorted(expected - outcome),
            good_dead_lettered={u: t.reasons[u] for u in sorted(self.good & t.dead.keys())},
            bad_scored=sorted(self.bad & t.scored.keys()),
            unexpected=sorted(outcome - expected),
            duplicates={u: n - 1 for u, n in both.items() if n > 1},
            alerts_missing=sorted(alerting - t.alerts.keys()),
            alerts_stray=sorted(t.alerts.keys() - alerting),
            no_reason=sorted(u for u, r in t.reasons.items() if not r),
            reasons=Counter(t.reasons.values()),
        )


@dataclass
class Tally:
    """Outputs by event: scores (and whether they alerted), alerts, dead letters and reasons."""

    topics: Topics
    dead_letter_id: Callable[[ConsumerRecord[bytes, bytes]], str]
    scored: Counter[str] = field(default_factory=Counter)
    alerting: Counter[str] = field(default_factory=Counter)  # scores that said "alerted"
    alerts: Counter[str] = field(default_factory=Counter)
    dead: Counter[str] = field(default_factory=Counter)
    reasons: dict[str, str] = field(default_factory=dict)
    # Create times (ms) of each event's scores and dead letters: which process wrote them.
    stamps: dict[str, list[int]] = field(default_factory=dict)
    parsed: int = 0

    def add(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> None:
        alerts_prefix = f"{self.topics.prefix}.alerts."
        for m in records:
            self.parsed += 1
            if m.value is None:
                continue
            if m.topic == self.topics.scores:
                score = json.loads(m.value)
                uid = score["uid"]
                self.scored[uid] += 1
                self.alerting[uid] += bool(score["alerted"])
            elif m.topic == self.topics.dlq:
                uid = self.dead_letter_id(m)
                self.dead[uid] += 1
                self.reasons[uid] = header_dict(m.headers).get("reason", "")
            elif m.topic.startswith(alerts_prefix):
                self.alerts[json.loads(m.value)["unmapped"]["scorer"]["event_uid"]] += 1
                continue
            else:
                continue
            self.stamps.setdefault(uid, []).append(m.timestamp)


@dataclass
class LedgerReport:
    inputs: int
    lost: list[str]  # no outcome at all
    good_dead_lettered: dict[str, str]  # uid -> reason: a good event the scorer gave up on
    bad_scored: list[str]  # a hostile record that got a score
    unexpected: list[str]  # an outcome for no input
    duplicates: dict[str, int]  # uid -> extra outcomes
    alerts_missing: list[str]  # score says alerted, no alert
    alerts_stray: list[str]  # alert without an alerting score
    no_reason: list[str]  # dead letter without a reason header
    reasons: Counter[str]

    @property
    def duplicate_count(self) -> int:
        return sum(self.duplicates.values())

    def problems(self) -> dict[str, Any]:
        """What is wrong besides duplicates (each test bounds those itself): empty when
        every good event was scored (with its alert) and every bad one dead-lettered."""
        found = {
            "lost": self.lost, "good dead-lettered": self.good_dead_lettered, "bad scored": self.bad_scored,
            "unexpected": self.unexpected, "alerts missing": self.alerts_missing,
            "alerts without an alerting score": self.alerts_stray, "dead letters without reason": self.no_reason,
        }
        return {name: (len(v), list(v)[:5]) for name, v in found.items() if v}

    def __str__(self) -> str:
        return (f"inputs={self.inputs} lost={len(self.lost)} good-dead-lettered={len(self.good_dead_lettered)} "
                f"bad-scored={len(self.bad_scored)} duplicates={self.duplicate_count} "
                f"(uids {len(self.duplicates)}) unexpected={len(self.unexpected)} "
                f"alerts-missing={len(self.alerts_missing)} dead letters {dict(self.reasons)}")
