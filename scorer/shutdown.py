"""Stopping what a process started: a background task, a child process.

A task is cancelled and awaited, so whatever it holds is released before its owner closes
the clients the task uses. A child gets SIGTERM first, so a scorer or a job finishes and
commits its batch in flight, and SIGKILL only when it has not exited within its grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from typing import Any

# How long a SIGKILLed child may take to be reaped: the kernel ends it at once, so this
# only bounds a process stuck in uninterruptible sleep.
KILL_WAIT_S = 10.0


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (nothing for None) and wait until it has ended. The CancelledError it
    ends with is the expected outcome, not a failure, so it does not reach the caller."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def stop_process(proc: subprocess.Popen[Any], grace_s: float) -> int:
    """SIGTERM, up to ``grace_s`` seconds for the child to exit, then SIGKILL; its exit code
    (negative: the signal that ended it). A child that has already exited is left alone."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(KILL_WAIT_S)
    return int(proc.returncode)
