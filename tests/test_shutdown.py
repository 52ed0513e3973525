"""Stopping a background task and a child process (scorer/service/shutdown.py)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import pytest

from scorer.shutdown import cancel_and_wait, stop_process


async def test_a_cancelled_task_has_ended_and_cleaned_up_when_the_call_returns() -> None:
    started, cleaned = asyncio.Event(), []

    async def hold() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(True)

    task = asyncio.create_task(hold())
    await started.wait()
    await cancel_and_wait(task)  # its CancelledError does not reach the caller
    assert task.cancelled() and cleaned == [True]
    await cancel_and_wait(None)  # no task yet: nothing to do


async def test_an_error_raised_while_the_task_unwinds_reaches_the_caller() -> None:
    started = asyncio.Event()

    async def fails_on_cancel() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    task = asyncio.create_task(fails_on_cancel())
    await started.wait()
    with pytest.raises(RuntimeError, match="cleanup failed"):
        await cancel_and_wait(task)


def _child(on_sigterm: str) -> subprocess.Popen[str]:
    """A Python child that sets its SIGTERM handling, says so, then waits to be stopped."""
    code = f"import signal, sys, time\n{on_sigterm}\nprint('ready', flush=True)\ntime.sleep(600)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def test_a_child_that_exits_on_sigterm_gives_its_own_exit_code() -> None:
    with _child("signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))") as proc:
        assert stop_process(proc, grace_s=60) == 3


def test_a_child_that_ignores_sigterm_is_killed_after_its_grace() -> None:
    with _child("signal.signal(signal.SIGTERM, signal.SIG_IGN)") as proc:
        assert stop_process(proc, grace_s=0.2) == -signal.SIGKILL


def test_a_child_that_has_exited_is_left_alone() -> None:
    with subprocess.Popen([sys.executable, "-c", "raise SystemExit(5)"]) as proc:
        proc.wait()
        assert stop_process(proc, grace_s=60) == 5
