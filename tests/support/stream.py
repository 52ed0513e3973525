"""An endless replay into Kafka for the lifecycle tests: a real capture played through
replay/'s player and Kafka sink (what ``scorer replay CAPTURE --to kafka --rate N`` runs),
played again with new uids when the test outlasts it, so the stream flows until the test
stops it however slow the machine is."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec

from replay.outgoing import Outgoing, capture_items
from replay.player import Pacing, Summary, play
from replay.sinks import KafkaSink
from scorer.config import Settings
from scorer.metrics import ScorerMetrics


class Stream:
    """``items`` played into the input topics at ``rate``; successive runs continue them."""

    def __init__(self, settings: Settings, items: Iterator[Outgoing], rate: float = 400.0) -> None:
        self.settings, self.pacing = settings, Pacing(rate=rate)
        self.items = items
        self.uids: list[str] = []  # in production order, as the scorer sees them
        self.stopping = asyncio.Event()

    def _until_stopped(self, limit: int | None) -> Iterator[Outgoing]:
        for n, item in enumerate(self.items):
            assert item.value is not None
            self.uids.append(json.loads(item.value)["uid"])
            yield item
            if self.stopping.is_set() or (limit is not None and n + 1 >= limit):
                return

    async def run(self, limit: int | None = None) -> None:
        sink = KafkaSink(self.settings, None)
        await sink.start()
        summary = await play(self._until_stopped(limit), sink, self.pacing,
                             Summary(target=self.settings.kafka.bootstrap_servers, pacing=self.pacing.describe()))
        print(f"\nreplay: {summary.events} events in {summary.seconds:.1f} s ({self.pacing.describe()})")

    @contextlib.asynccontextmanager
    async def flowing(self, metrics: ScorerMetrics, quiet_s: float = 90.0) -> AsyncIterator[None]:
        """The stream plays while the body runs; on leaving, it stops and the scorer counting
        into ``metrics`` has consumed every event it played (a scorer that consumes nothing
        more for ``quiet_s`` fails the test; a slow one that keeps consuming is waited for)."""
        task = asyncio.create_task(self.run())
        try:
            yield
        finally:
            self.stopping.set()
            await task
            await _consumed_all(metrics, len(self.uids), quiet_s)


async def _consumed_all(metrics: ScorerMetrics, played: int, quiet_s: float) -> None:
    consumed = last = sum(metrics.accounting.consumed.values())
    progress = time.monotonic()
    while consumed < played:
        assert time.monotonic() - progress < quiet_s, (
            f"the scorer consumed {consumed} of the {played} events played, then nothing for {quiet_s:.0f} s")
        await asyncio.sleep(0.1)
        consumed = sum(metrics.accounting.consumed.values())
        if consumed > last:
            last, progress = consumed, time.monotonic()


def endless(capture: Path) -> Iterator[Outgoing]:
    """The capture's events, then again and again, each round's uids suffixed ``~<round>``."""
    for round_ in itertools.count():
        for item in capture_items([capture]):
            if not isinstance(item, Outgoing):
                continue
            if round_ and item.value is not None:
                event = msgspec.json.decode(item.value)
                event["uid"] = f"{event['uid']}~{round_}"
                item = msgspec.structs.replace(item, value=msgspec.json.encode(event))
            yield item
