"""Realistic load: the bundled capture's events, cycled, each with a unique ``uid``.

The uid is ``b<seq>`` so the output side can find each event's send time by index, which
gives end-to-end latency (event produced -> output consumed) without extra headers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt
from aiokafka import AIOKafkaProducer

from scorer.config import KafkaSettings
from scorer.demo import CaptureLine
from scorer.events.decode import decode_mapping
from scorer.events.structs import Event, EventKind, entity_key
from scorer.kafka import make_producer, send_batched
from scorer.pipeline.records import OutputRecord

Payload = tuple[EventKind, bytes, bytes]  # kind, key, value
_WEEK = 7 * 86400.0


def templates(capture: Path, kinds: tuple[EventKind, ...]) -> list[tuple[EventKind, Event]]:
    import gzip

    dec = msgspec.json.Decoder(CaptureLine)
    out: list[tuple[EventKind, Event]] = []
    with gzip.open(capture, "rb") as fh:
        for line in fh:
            item = dec.decode(line)
            kind = EventKind(item.kind)
            if kind in kinds:
                out.append((kind, decode_mapping(kind, msgspec.json.decode(bytes(item.event)))))
    return out


def payloads(tpl: list[tuple[EventKind, Event]], n: int, start: int = 0) -> Iterator[Payload]:
    """``n`` events from ``seq = start`` on, cycling ``tpl``. Each cycle is moved later in
    time by its kind's span: replayed with the same timestamps, every cycle would land in
    the per-entity windows of the previous ones, and the windowed counts (and so the alert
    rate) would grow with the length of the run instead of staying the stream's."""
    enc = msgspec.json.Encoder()
    spans = _spans(tpl)
    for seq in range(start, start + n):
        kind, event = tpl[seq % len(tpl)]
        shift = (seq // len(tpl)) * spans[kind]
        ev = msgspec.structs.replace(event, uid=f"b{seq}", label=None, ts=event.ts + shift)
        yield kind, entity_key(ev).encode(), enc.encode(ev)


def _spans(tpl: list[tuple[EventKind, Event]]) -> dict[EventKind, float]:
    """Per kind, a whole number of weeks longer than its templates' time range and than any
    window a feature set keeps (whole weeks: hour-of-day and weekday stay the template's)."""
    low: dict[EventKind, float] = {}
    high: dict[EventKind, float] = {}
    for kind, event in tpl:
        low[kind] = min(low.get(kind, event.ts), event.ts)
        high[kind] = max(high.get(kind, event.ts), event.ts)
    return {kind: (1 + (high[kind] - low[kind]) // _WEEK) * _WEEK for kind in low}


class LoadGenerator:
    """Produces payloads to ``events.<kind>`` topics, at a fixed rate or as fast as possible.

    ``sent_at[seq]`` holds each event's send time (``time.time()``), for latency.
    """

    def __init__(self, bootstrap: str, topics: dict[EventKind, str], total: int) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.sent_at: npt.NDArray[np.float64] = np.zeros(total, dtype=np.float64)

    async def run(self, items: list[Payload], rate: float | None = None, chunk: int = 500, start: int = 0) -> float:
        """Send ``items``; ``start`` is the seq of ``items[0]`` (where its send time goes)."""
        # An ordinary upstream producer, not the scorer's: leader acks only, a short linger.
        producer = make_producer(KafkaSettings(bootstrap_servers=self.bootstrap), acks=1, enable_idempotence=False,
                                 linger_ms=2, max_batch_size=256 * 1024)
        await producer.start()
        t0 = time.perf_counter()
        try:
            step = chunk if rate is None else max(1, int(rate / 200))  # 5 ms ticks at fixed rate
            for i in range(0, len(items), step):
                if rate is not None:
                    due = t0 + i / rate
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await self._send_chunk(producer, items[i:i + step], start + i)
            await producer.flush()
        finally:
            await producer.stop()
        return time.perf_counter() - t0

    async def _send_chunk(self, producer: AIOKafkaProducer, chunk: list[Payload], first: int) -> None:
        """Batches per (topic, partition), placed by key like a plain send() would; acks are
        not awaited here (the producer is flushed at the end)."""
        now = time.time()
        await send_batched(producer, [OutputRecord(self.topics[kind], value, key) for kind, key, value in chunk])
        self.sent_at[first:first + len(chunk)] = now
