"""One line per micro-batch, for finding what the slow batches of a latency tail are.

A debug option, off unless ``SCORER_BATCH_TRACE`` names a file (``python -m
scorer.bench.latency --trace DIR`` sets it per runner and reads the files back). The
histograms of /metrics say how slow the p99 batches are; only a per-batch record says what
they had in common: more records, a garbage collection, the thread preempted by the broker
or the load generator (2 cores), or the loop busy elsewhere before the batch was fetched.

Per batch: records; ``idle`` (from the end of the previous batch's hand-over to this fetch's
start: the rebalance/model-swap hooks and ``reap``), ``fetch`` (inside the fetch call, mostly
waiting for records), ``score`` (consumer returned -> outputs built) with the thread's CPU
time, the part of it other tasks took in the loop's turns (``io``: acks, the producer's
sender, inference tasks, timers), voluntary / involuntary context switches (``getrusage(RUSAGE_THREAD)``) and GC
collections (``gcs``) and seconds over it, the scoring stages, then ``send`` and ``ack`` and the
added latency (consumer returned -> every output acknowledged). Times in milliseconds.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

from scorer.pipeline.turns import SPENT

TRACE_ENV = "SCORER_BATCH_TRACE"
_FLUSH_EVERY = 1000  # rows kept before they are appended to the file


class _Gc:
    """Collections and seconds of the cyclic collector, cumulative (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.collections = 0
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.collections += 1
            self.seconds += time.perf_counter() - self._started


class Mark:
    """The thread's clocks and counters at one instant."""

    __slots__ = ("cpu", "gc_s", "gcs", "io_s", "ivcsw", "vcsw", "wall")

    def __init__(self, collector: _Gc) -> None:
        usage = resource.getrusage(resource.RUSAGE_THREAD)
        self.wall, self.cpu = time.perf_counter(), time.thread_time()
        self.vcsw, self.ivcsw = usage.ru_nvcsw, usage.ru_nivcsw
        self.gcs, self.gc_s = collector.collections, collector.seconds
        self.io_s = SPENT.seconds


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 4)


class BatchTrace:
    """Collects the rows and appends them to ``path`` every :data:`_FLUSH_EVERY` and at
    ``close``. Without a path (the service's normal case) every call returns at once: the
    loop calls it unconditionally."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self._gc = _Gc()
        self._idle_from = 0.0  # the previous batch handed over (0: none yet)
        self._fetch_from = 0.0  # the first fetch call since then
        self._fetched: Mark | None = None
        if path is not None:
            gc.callbacks.append(self._gc)
            path.write_text("")

    @classmethod
    def from_env(cls) -> BatchTrace:
        where = os.environ.get(TRACE_ENV)
        return cls(Path(where) if where else None)

    def fetching(self) -> None:
        """A fetch call starts; fetches that return nothing count into the next batch's ``fetch``."""
        if self.path is not None and self._fetch_from <= self._idle_from:
            self._fetch_from = time.perf_counter()

    def fetched(self) -> None:
        """Records were returned: the batch's ``score`` starts."""
        if self.path is not None:
            self._fetched = Mark(self._gc)

    def scored(self, n: int, timings: dict[str, float]) -> dict[str, Any] | None:
        """The outputs are built: the row so far (``acked`` completes it)."""
        start = self._fetched
        if self.path is None or start is None:
            return None
        end = Mark(self._gc)
        row: dict[str, Any] = {
            "t": round(start.wall, 6), "records": n,
            "idle_ms": _ms(self._fetch_from - self._idle_from) if self._idle_from else 0.0,
            "fetch_ms": _ms(start.wall - self._fetch_from), "score_ms": _ms(end.wall - start.wall),
            "score_cpu_ms": _ms(end.cpu - start.cpu), "vcsw": end.vcsw - start.vcsw, "ivcsw": end.ivcsw - start.ivcsw,
            "gcs": end.gcs - start.gcs, "gc_ms": _ms(end.gc_s - start.gc_s), "io_ms": _ms(end.io_s - start.io_s),
        }
        row.update({f"{stage}_ms": _ms(s) for stage, s in timings.items() if stage != "score"})
        return row

    def handed(self) -> None:
        """The batch's outputs are with the producer: what runs until the next fetch is ``idle``."""
        if self.path is not None:
            self._idle_from = time.perf_counter()

    def acked(self, row: dict[str, Any] | None, latency: float, send: float, ack: float) -> None:
        if row is None:
            return
        row.update(send_ms=_ms(send), ack_ms=_ms(ack), added_ms=_ms(latency))
        self.rows.append(row)
        if len(self.rows) >= _FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.path is not None and self.rows:
            with self.path.open("a") as out:
                out.writelines(json.dumps(row) + "\n" for row in self.rows)
        self.rows.clear()

    def close(self) -> None:
        self.flush()
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)
