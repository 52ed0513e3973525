"""The ``scorer`` CLI as an engineer runs it: a subprocess, awaited so the scorer under
test keeps scoring meanwhile."""

from __future__ import annotations

import asyncio
import sys
import time

from tests.support.paths import ROOT


async def scorer_cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    """``scorer ARGS...`` with ``env``: exit code and stdout+stderr (printed, for the log)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scorer.cli", "--log-level", "WARNING", *args, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    started = time.perf_counter()
    out, _ = await proc.communicate()
    text = out.decode()
    print(f"\n$ scorer {' '.join(args)}   [{time.perf_counter() - started:.1f}s, exit {proc.returncode}]\n{text}")
    assert proc.returncode is not None
    return proc.returncode, text
