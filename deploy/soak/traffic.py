"""The soak's traffic and its ledger: real events of every kind at a fixed rate, each with
a sequence-numbered uid, and an outside reader of the output topics that accounts for each.

Uids are ``s<seq>``: the ledger keeps one byte per event (how many outcomes it had) instead
of a set of strings, so hours at thousands of events per second fit in a few tens of MB.
One record in :data:`BAD_EVERY` is hostile by construction (truncated JSON) and must be
dead-lettered; every other one must be scored exactly once (exactly-once mode), with its
alert when the score says it alerted.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from scorer.captures import iter_capture
from scorer.captures.base import LabeledEvent
from scorer.events.structs import EventKind, entity_key

BAD_EVERY = 40
_UID = re.compile(rb'"uid":\s*"s(\d+)"')


def load_templates(captures: dict[EventKind, Path], per_kind: int) -> dict[EventKind, list[tuple[bytes, object]]]:
    """(key, event) pairs of real events per kind, read once; the uid is replaced per send."""
    out: dict[EventKind, list[tuple[bytes, object]]] = {}
    for kind, path in captures.items():
        items = (it for it in iter_capture(path) if isinstance(it, LabeledEvent))
        out[kind] = [(entity_key(it.event).encode(), it.event) for it in itertools.islice(items, per_kind)]
        if not out[kind]:
            raise SystemExit(f"soak: no events of kind {kind.value} in {path}")
    return out


def is_bad(seq: int) -> bool:
    return seq % BAD_EVERY == BAD_EVERY - 1


def records(templates: dict[EventKind, list[tuple[bytes, object]]]) -> Iterator[tuple[EventKind, bytes, bytes]]:
    """(kind, key, value) without end: the kinds interleaved, uid ``s<seq>``, seq from 0, and
    the time of sending as the event time. Replayed capture times would go back at every
    cycle, so nothing would ever leave the features' 60 s windows: per-source state would
    grow to its caps (MAX_WINDOW_FLOWS per netflow source) and look like a leak."""
    enc = msgspec.json.Encoder()
    cycles = [(kind, itertools.cycle(pairs)) for kind, pairs in templates.items()]
    for seq in itertools.count():
        kind, pairs = cycles[seq % len(cycles)]
        key, event = next(pairs)
        if is_bad(seq):
            yield kind, key, b'{"uid": "s%d", "ts": ' % seq
        else:
            live = msgspec.structs.replace(event, uid=f"s{seq}", ts=time.time())  # type: ignore[type-var]
            yield kind, key, enc.encode(live)


@dataclass
class Producer:
    """Produces at ``rate`` per second (acks=all, idempotent, retried across broker restarts)."""

    bootstrap: str
    topics: dict[EventKind, str]
    rate: float
    sent: int = 0  # acknowledged: seqs 0 .. sent-1 are in Kafka
    failed: list[int] = field(default_factory=list)  # seqs whose send raised (may or may not be in Kafka)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, source: Iterator[tuple[EventKind, bytes, bytes]]) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=60_000,
            retry_backoff_ms=200,
        )
        await producer.start()
        chunk = max(1, int(self.rate / 10))
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                futures = [
                    await producer.send(self.topics[kind], value, key=key)
                    for kind, key, value in itertools.islice(source, chunk)
                ]
                results = await asyncio.gather(*futures, return_exceptions=True)
                for i, result in enumerate(results):
                    if isinstance(result, KafkaError):
                        self.failed.append(self.sent + i)
                self.sent += len(futures)
                await asyncio.sleep(max(0.0, chunk / self.rate - (time.monotonic() - started)))
        finally:
            await producer.stop()


class _Score(msgspec.Struct):
    uid: str
    alerted: bool


class _ScorerPart(msgspec.Struct):
    event_uid: str


class _Unmapped(msgspec.Struct):
    scorer: _ScorerPart


class _Alert(msgspec.Struct):
    unmapped: _Unmapped


@dataclass
class Ledger:
    """Outcomes by seq, read (read_committed) from the scores, dead-letter and alert topics."""

    bootstrap: str
    scores: str
    dlq: str
    alerts: list[str]
    outcomes: bytearray = field(default_factory=bytearray)  # scores + dead letters per seq
    alerting: bytearray = field(default_factory=bytearray)  # 1 when its score alerted
    alerted: bytearray = field(default_factory=bytearray)  # alerts per seq
    distinct: int = 0
    duplicates: int = 0
    misrouted: int = 0  # a good event dead-lettered, or a hostile one scored
    unknown: int = 0  # an output for no input of this run
    alerts_distinct: int = 0
    alerting_distinct: int = 0
    records: int = 0

    def _grow(self, seq: int) -> None:
        if seq >= len(self.outcomes):
            extra = max(seq + 1 - len(self.outcomes), 1 << 20)
            for arr in (self.outcomes, self.alerting, self.alerted):
                arr.extend(bytes(extra))

    def _outcome(self, seq: int, scored: bool) -> None:
        self._grow(seq)
        n = self.outcomes[seq]
        if n == 0:
            self.distinct += 1
        else:
            self.duplicates += 1
        self.outcomes[seq] = min(n + 1, 255)
        if scored == is_bad(seq):
            self.misrouted += 1

    def add(self, topic: str, value: bytes) -> None:
        self.records += 1
        if topic == self.scores:
            score = msgspec.json.decode(value, type=_Score)
            if not score.uid.startswith("s") or not score.uid[1:].isdigit():
                self.unknown += 1
                return
            seq = int(score.uid[1:])
            self._outcome(seq, True)
            if score.alerted and not self.alerting[seq]:
                self.alerting[seq] = 1
                self.alerting_distinct += 1
        elif topic == self.dlq:
            found = _UID.search(value)
            if found is None:
                self.unknown += 1
                return
            self._outcome(int(found.group(1)), False)
        else:
            uid = msgspec.json.decode(value, type=_Alert).unmapped.scorer.event_uid
            if not uid.startswith("s") or not uid[1:].isdigit():
                self.unknown += 1
                return
            seq = int(uid[1:])
            self._grow(seq)
            if self.alerted[seq] == 0:
                self.alerts_distinct += 1
            else:
                self.duplicates += 1
            self.alerted[seq] = min(self.alerted[seq] + 1, 255)

    def alerts_missing(self, below: int) -> int:
        """Events under seq ``below`` whose score alerted and that have no alert (or the
        reverse): both are written in one transaction, so none once the reader caught up."""
        n = min(below, len(self.alerting))
        return sum(1 for a, b in zip(self.alerting[:n], self.alerted[:n], strict=True) if bool(a) != bool(b))

    def lost(self, below: int, uncertain: set[int]) -> list[int]:
        n = min(below, len(self.outcomes))
        missing = [s for s in range(n) if self.outcomes[s] == 0 and s not in uncertain]
        return missing + [s for s in range(n, below) if s not in uncertain]

    async def run(self, stopping: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            self.scores,
            self.dlq,
            *self.alerts,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
            request_timeout_ms=60_000,
        )
        await consumer.start()
        try:
            while not stopping.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                for msgs in batch.values():
                    for m in msgs:
                        if m.value is not None:
                            self.add(m.topic, m.value)
        finally:
            await consumer.stop()
