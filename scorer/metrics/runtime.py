"""What stalls a scoring process besides its own batches: event-loop lag and GC pauses.

One Python thread runs the consumer, the scoring, the producer's sender and the HTTP
endpoint. While a batch is scored, nothing else runs: a produce request waiting to be
written, an ack waiting to be read, a fetch response. ``scorer_event_loop_lag_seconds`` is
how late a timer fires (a probe every ``interval`` seconds), so a p99 of added latency can
be split into "the loop was busy" and "the broker was slow". ``scorer_gc_pause_seconds``
times every collection of the cyclic garbage collector, which stops the whole process.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from scorer.metrics.latency import LabelledHistogram, WeightedHistogram
from scorer.shutdown import cancel_and_wait

PROBE_INTERVAL_S = 0.01


class LoopLag:
    """A task that sleeps ``interval`` s again and again and records how late it woke up."""

    def __init__(self, registry: CollectorRegistry, interval: float = PROBE_INTERVAL_S) -> None:
        self.interval = interval
        self.lag = WeightedHistogram(
            "scorer_event_loop_lag_seconds",
            f"How late a timer due every {interval * 1000:g} ms fired: the longest the event loop "
            "was busy (scoring, GC, fetch parsing) before it could serve I/O",
            registry=registry,
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._probe(), name="event-loop-lag")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.lag.observe(max(0.0, loop.time() - due))


class GcPauses:
    """``gc.callbacks`` timing every collection, by generation. Process-wide: install once."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.pauses = LabelledHistogram(
            "scorer_gc_pause_seconds", "Time the cyclic garbage collector stopped the process, by generation",
            "generation", registry=registry,
        )
        self.collected = Counter("scorer_gc_collected_objects", "Unreachable objects the collector freed",
                                 registry=registry)
        self._started = 0.0

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.observe(str(info.get("generation", "")), time.perf_counter() - self._started)
            self.collected.inc(int(info.get("collected", 0)))
