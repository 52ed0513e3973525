"""Giving the event loop's I/O a turn while one thread scores.

The consumer's fetches, the producer's sender and its acks all run as callbacks and tasks
on the scoring thread's event loop. A produce request is on the wire only after the
sender task ran 2-3 times; an ack that arrived passes 4-5 callbacks (the socket's reader,
the request's future, the sender's handler, the batch futures, the delivery task) before
the loop sees it. Each ``await asyncio.sleep(0)`` runs the loop once. Without these turns
the next batch's scoring holds this batch's request back when ``getmany()`` returns at
once, and an ack that arrives during scoring waits for the whole batch (docs/benchmarks.md
section 16: the ``ack`` stage's p50 and p99 about halved at 10,000 events/s, CPU per event
unchanged within the noise).

A turn with nothing to serve still costs a loop iteration (a ``select``, the loop's own
Python): four of them were ~0.04 ms of a 50-record batch's ``score`` at 10,000 events/s,
where the previous batch is acknowledged and the next fetch request not sent yet while a
batch is scored. Whoever owns the connections says whether they may have work
(:func:`watch_io`); with such a watch and nothing ready, :func:`serve_io` returns at once.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable

MAX_TURNS = 8

# Per event loop: callables that say whether a request of theirs may be answered now (an
# unacknowledged produce, a fetch or a commit on the wire).
_WATCHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Callable[[], bool]]] = (
    weakref.WeakKeyDictionary())


class _Spent:
    """Seconds spent inside :func:`serve_io`, cumulative: what other tasks (acks, the
    sender, inference tasks, timers) took out of the batch that yielded
    (``scorer.metrics.batchtrace`` reads it)."""

    seconds = 0.0


SPENT = _Spent()


def watch_io(pending: Callable[[], bool]) -> Callable[[], None]:
    """Let :func:`serve_io` skip its turns on this event loop while nothing is ready and
    every watch's ``pending()`` is false; returns the function that removes the watch.
    Timers and other connections (heartbeats, /metrics) then wait for the batch's end, as
    they would without the turns."""
    watches = _WATCHES.setdefault(asyncio.get_running_loop(), [])
    watches.append(pending)
    return lambda: watches.remove(pending) if pending in watches else None


def _quiet(loop: asyncio.AbstractEventLoop, ready: object) -> bool:
    """Nothing scheduled, and a watch says none of its requests can be answered now."""
    if ready:
        return False
    watches = _WATCHES.get(loop)
    if not watches:
        return False
    return not any(pending() for pending in watches)


async def serve_io(max_turns: int = MAX_TURNS) -> None:
    """Run the event loop until nothing else is ready (at most ``max_turns`` iterations).

    ``_ready`` is CPython's queue of callbacks due in the next iteration: when it is empty
    after a turn, nothing is in progress and the turns stop (a loop without it, such as
    uvloop, gets one turn). An idle turn costs a few microseconds (a ``select`` with no
    timeout).
    """
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)
    if _quiet(loop, ready):
        return
    start = time.perf_counter()
    try:
        for _ in range(max_turns):
            await asyncio.sleep(0)
            if not ready:
                return
    finally:
        SPENT.seconds += time.perf_counter() - start
