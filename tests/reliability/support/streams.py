"""Paced event streams with hostile records mixed in, reading outputs back, and the ledger
that proves every input ended as a score or a dead letter (by uid)."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from scorer.events.structs import EventKind
from tests.reliability.support.process import Topics
from tests.support.samples import SAMPLES

Record = tuple[EventKind, bytes, bytes, str]  # (kind, key, value, uid)
BAD_EVERY = 40  # one hostile record in 40: dead letters are part of "nothing lost"
_UID_IN_BYTES = re.compile(rb'"uid":\s*"([^"]+)"')


# --------------------------------------------------------------------------- streams and the ledger
def make_stream(kinds: Sequence[EventKind], tag: str, per_kind: int, *, pad: int = 0) -> list[Record]:
    """``per_kind`` real events of each kind with unique uids, interleaved, with one hostile
    record in BAD_EVERY (truncated JSON or a missing field) that must be dead-lettered.
    ``pad`` adds an unknown field of that many bytes to every event (big records)."""
    per: list[list[Record]] = []
    for kind in kinds:
        sample = SAMPLES[kind]()
        out: list[Record] = []
        for i, (uid, key, value) in zip(range(per_kind), itertools.cycle(sample), strict=False):
            new_uid = f"{uid}#{tag}{i}"
            if i % BAD_EVERY == BAD_EVERY - 1:
                bad = (b'{"uid": "%s", "ts": ' if i % 2 else b'{"uid": "%s", "x": 1}') % new_uid.encode()
                out.append((kind, key, bad, new_uid))
                continue
            doc = json.loads(value)
            doc["uid"] = new_uid
            if pad:
                doc["Pad"] = "p" * pad
            out.append((kind, key, json.dumps(doc).encode(), new_uid))
        per.append(out)
    return [r for group in itertools.zip_longest(*per) for r in group if r is not None]


async def feed(
    client: dict[str, Any], topics: Topics, records: Sequence[Record], *, rate: float,
    progress: list[int] | None = None,
) -> int:
    """Produce ``records`` at about ``rate`` per second (acks=all, idempotent, retried across
    broker restarts); ``progress[0]`` counts what was acknowledged so far."""
    producer = AIOKafkaProducer(**client, acks="all", enable_idempotence=True, linger_ms=5,
                                request_timeout_ms=60_000, retry_backoff_ms=200)
    await producer.start()
    chunk = max(1, int(rate / 10))
    sent = 0
    try:
        for i in range(0, len(records), chunk):
            started = time.monotonic()
            futures = [await producer.send(topics.input(kind), value, key=key)
                       for kind, key, value, _ in records[i:i + chunk]]
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
    ``settle`` more seconds with nothing new (so late duplicates are seen too)."""
    consumer = AIOKafkaConsumer(*names, **client, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False, isolation_level=isolation)
    await consumer.start()
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            got = [m for msgs in batch.values() for m in msgs]
            out.extend(got)
            if got or not done(out):
                quiet_since = None
                continue
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                break
    finally:
        await consumer.stop()
    return out


@dataclass
class Ledger:
    """What went in (uids) against what came out (scores by uid, dead letters by the uid in
    their original bytes): proves "consumed = scored + dead-lettered" from outside."""

    expected: set[str]
    scores_topic: str
    dlq_topic: str

    def outcomes(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> Counter[str]:
        seen: Counter[str] = Counter()
        for m in records:
            if m.topic == self.scores_topic and m.value is not None:
                seen[json.loads(m.value)["uid"]] += 1
            elif m.topic == self.dlq_topic and m.value is not None:
                found = _UID_IN_BYTES.search(m.value)
                seen[found.group(1).decode() if found else f"?{m.partition}:{m.offset}"] += 1
        return seen

    def complete(self, records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        return self.expected <= set(self.outcomes(records))

    def report(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> LedgerReport:
        seen = self.outcomes(records)
        return LedgerReport(
            inputs=len(self.expected),
            lost=sorted(self.expected - set(seen)),
            unexpected=sorted(set(seen) - self.expected),
            duplicates={u: n - 1 for u, n in seen.items() if n > 1},
        )


@dataclass
class LedgerReport:
    inputs: int
    lost: list[str]
    unexpected: list[str]
    duplicates: dict[str, int]

    @property
    def duplicate_count(self) -> int:
        return sum(self.duplicates.values())

    def __str__(self) -> str:
        return (f"inputs={self.inputs} lost={len(self.lost)} duplicates={self.duplicate_count} "
                f"(uids {len(self.duplicates)}) unexpected={len(self.unexpected)}")


def alert_uids(records: Iterable[ConsumerRecord[bytes, bytes]], prefix: str) -> Counter[str]:
    """Event uid of every alert on ``<prefix>.alerts.*`` (duplicates counted)."""
    return Counter(json.loads(m.value)["unmapped"]["scorer"]["event_uid"]
                   for m in records if m.topic.startswith(f"{prefix}.alerts.") and m.value is not None)


