"""Playing a replay: each item to a sink (one of the two places events go) on a pacing's schedule.

What is replayed, and in what order (the order of the inputs, deterministic), is
:mod:`replay.outgoing`'s. Pacing never reorders; it only decides *when* each event goes:

* as recorded (``speed`` 1, or scaled by ``speed``): the capture's inter-arrival gaps, each
  measured from the latest timestamp seen so far in the same capture, so jitter or an
  out-of-order record never makes the replay wait twice; a new capture starts at once;
* fixed ``rate`` events per second;
* ``fast``: as fast as the sink takes them.

The schedule is absolute (start + offset): when the sink falls behind, the replay catches up
without sleeping instead of drifting, and the summary reports how late it ran.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import IO, Protocol

import msgspec

from scorer.captures import ReadError

from .outgoing import Outgoing


class Pacing(msgspec.Struct, frozen=True):
    speed: float = 1.0
    rate: float | None = None
    fast: bool = False
    # Idle stretches of a capture longer than this (capture seconds) are cut to it.
    max_gap: float | None = None

    def describe(self) -> str:
        if self.fast:
            return "as fast as possible"
        if self.rate:
            return f"fixed rate {self.rate:g} events/s"
        return "as recorded" + (f" x{self.speed:g}" if self.speed != 1 else "")


class Sink(Protocol):
    async def send(self, item: Outgoing) -> None: ...

    async def idle(self) -> None:
        """The replay is about to wait: hand over whatever is buffered."""

    async def close(self) -> None: ...


class Clock:
    """When each event is due, in seconds after the start of the replay (None: now)."""

    def __init__(self, pacing: Pacing) -> None:
        self.pacing = pacing
        self._n = 0
        self._offset = 0.0
        self._capture: str | None = None
        self._latest = 0.0

    def due(self, capture: str, ts: float) -> float | None:
        p = self.pacing
        self._n += 1
        if p.fast:
            return None
        if p.rate:
            return (self._n - 1) / p.rate
        if capture != self._capture:
            self._capture, self._latest = capture, ts
        gap = max(0.0, ts - self._latest)
        self._latest = max(self._latest, ts)
        if p.max_gap is not None:
            gap = min(gap, p.max_gap)
        self._offset += gap / p.speed
        return self._offset


class Summary(msgspec.Struct):
    target: str
    pacing: str
    events: int = 0
    by_kind: dict[str, int] = {}
    read_errors: int = 0
    errors_by_reason: dict[str, int] = {}
    seconds: float = 0.0
    events_per_second: float = 0.0
    max_lateness_s: float = 0.0  # how far behind its schedule the replay ran at worst
    first_ts: float | None = None
    last_ts: float | None = None
    limited: bool = False
    renamed_uids: int = 0
    dead_lettered: dict[str, int] = {}
    scoring_seconds: float | None = None  # embedded: time inside BatchScorer.score
    scorer_caught_up: bool | None = None  # kafka --wait: the scorer committed past the replay
    incidents: dict[str, int] | None = None  # embedded --incidents: the incident stage's counts
    incidents_caught_up: bool | None = None  # kafka --wait: the incident job correlated the alerts
    outputs: dict[str, str] = {}

    def text(self) -> str:
        kinds = "  ".join(f"{k}={v}" for k, v in sorted(self.by_kind.items()))
        errors = "  ".join(f"{k}={v}" for k, v in sorted(self.errors_by_reason.items()))
        span = (self.last_ts - self.first_ts) if self.first_ts is not None and self.last_ts else 0
        lines = [
            f"replayed      {self.events} events to {self.target} ({self.pacing})  {kinds}",
            f"read errors   {self.read_errors}  {errors}".rstrip(),
            f"time          {self.seconds:.2f} s  {self.events_per_second:,.0f} events/s  "
            f"max lateness {self.max_lateness_s * 1000:.1f} ms  capture span {span:,.1f} s",
        ]
        if self.renamed_uids:
            lines.append(f"renamed uids  {self.renamed_uids} (taken by an earlier event)")
        if self.dead_lettered:
            lines.append(f"dead-lettered {sum(self.dead_lettered.values())}  {self.dead_lettered}")
        if self.incidents is not None:
            lines.append(f"incidents     {self.incidents}")
        if self.scorer_caught_up is not None:
            lines.append(
                f"scorer        {'caught up' if self.scorer_caught_up else 'BEHIND: partial'}"
            )
        if self.incidents_caught_up is not None:
            lines.append(
                f"incident job  {'caught up' if self.incidents_caught_up else 'STALLED: not every alert correlated'}"
            )
        lines += [f"{name:<13} {path}" for name, path in sorted(self.outputs.items())]
        return "\n".join(lines)


Progress = Callable[[int, float], None]  # (events sent, seconds elapsed)


async def play(
    items: Iterable[Outgoing | ReadError],
    sink: Sink,
    pacing: Pacing,
    summary: Summary,
    *,
    limit: int | None = None,
    progress: Progress | None = None,
    errors: IO[str] | None = None,
) -> Summary:
    """Send ``items`` to ``sink`` on ``pacing``'s schedule; fill in and return ``summary``."""
    err = errors or sys.stderr
    clock = Clock(pacing)
    by_kind: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    start = loop.time()
    for item in items:
        if isinstance(item, ReadError):
            # Clear and located, then on with the rest of the capture.
            print(f"replay: {item}", file=err)
            reasons[item.reason] += 1
            continue
        if limit is not None and summary.events >= limit:
            summary.limited = True
            break
        due = clock.due(item.capture, item.ts)
        if due is not None:
            wait = start + due - loop.time()
            if wait > 0.0005:
                await sink.idle()
                wait = start + due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            else:
                summary.max_lateness_s = max(summary.max_lateness_s, -wait)
        await sink.send(item)
        summary.events += 1
        summary.renamed_uids += item.renamed_uid
        by_kind[item.kind.value if item.kind else item.topic or "?"] += 1
        summary.first_ts = item.ts if summary.first_ts is None else min(summary.first_ts, item.ts)
        summary.last_ts = item.ts if summary.last_ts is None else max(summary.last_ts, item.ts)
        if progress is not None:
            progress(summary.events, loop.time() - start)
    await sink.close()
    summary.seconds = round(loop.time() - start, 3)
    summary.events_per_second = (
        round(summary.events / summary.seconds, 1) if summary.seconds else 0.0
    )
    summary.by_kind = dict(by_kind)
    summary.read_errors = sum(reasons.values())
    summary.errors_by_reason = dict(reasons)
    return summary


def planned(
    items: Iterable[Outgoing | ReadError], pacing: Pacing, limit: int | None
) -> tuple[int, float]:
    """(events, seconds) a replay of ``items`` will take on its schedule: for the ETA."""
    clock = Clock(pacing)
    n, last = 0, 0.0
    for item in items:
        if isinstance(item, ReadError):
            continue
        if limit is not None and n >= limit:
            break
        n += 1
        last = clock.due(item.capture, item.ts) or last
    return n, last


class ProgressBar:
    """``[#####.....] 1,234/5,678 21%  3,456 ev/s  ETA 0:01:02`` on stderr, a few times a second."""

    def __init__(self, total: int, planned_s: float, out: IO[str] | None = None) -> None:
        self.total, self.planned_s = max(total, 1), planned_s
        self.out = out or sys.stderr
        self._last = 0.0

    def __call__(self, done: int, elapsed: float) -> None:
        now = time.monotonic()
        if now - self._last < 0.2 and done < self.total:
            return
        self._last = now
        rate = done / elapsed if elapsed > 0 else 0.0
        by_rate = (self.total - done) / rate if rate else 0.0
        # Paced replays end on their schedule; fast ones when the sink has taken everything.
        eta = max(self.planned_s - elapsed, by_rate) if self.planned_s else by_rate
        frac = min(done / self.total, 1.0)
        bar = "#" * int(frac * 30)
        self.out.write(
            f"\r[{bar:<30}] {done:,}/{self.total:,} {frac:4.0%}  {rate:,.0f} ev/s  "
            f"ETA {time.strftime('%H:%M:%S', time.gmtime(max(eta, 0)))} "
        )
        if done >= self.total:
            self.out.write("\n")
        self.out.flush()
