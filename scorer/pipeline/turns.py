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
"""

from __future__ import annotations

import asyncio
import time

MAX_TURNS = 8


class _Spent:
    """Seconds spent inside :func:`serve_io`, cumulative: what other tasks (acks, the
    sender, inference tasks, timers) took out of the batch that yielded
    (``scorer.metrics.batchtrace`` reads it)."""

    seconds = 0.0


SPENT = _Spent()


async def serve_io(max_turns: int = MAX_TURNS) -> None:
    """Run the event loop until nothing else is ready (at most ``max_turns`` iterations).

    ``_ready`` is CPython's queue of callbacks due in the next iteration: when it is empty
    after a turn, nothing is in progress and the turns stop (a loop without it, such as
    uvloop, gets one turn). An idle turn costs a few microseconds (a ``select`` with no
    timeout).
    """
    ready = getattr(asyncio.get_running_loop(), "_ready", None)
    start = time.perf_counter()
    try:
        for _ in range(max_turns):
            await asyncio.sleep(0)
            if not ready:
                return
    finally:
        SPENT.seconds += time.perf_counter() - start
