"""The ``scorer`` CLI as an engineer runs it: a subprocess, awaited so the scorer under
test keeps scoring meanwhile."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from tests.support.kafka import free_ports
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


def offline_env(**extra: str) -> dict[str, str]:
    """This process's environment with every SCORER_ setting at its default (the data
    folder kept: it is where this test run found the data), and a broker address nothing
    listens on: the CLI as it runs on a laptop without Kafka."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORER_") or k == "SCORER_DATA_DIR"}
    env["SCORER_KAFKA__BOOTSTRAP_SERVERS"] = f"127.0.0.1:{free_ports(1)[0]}"
    env.update(extra)
    return env


def run_scorer(env: dict[str, str], *args: str, timeout: float = 600) -> tuple[int, str, str]:
    """``scorer ARGS...`` to its end: exit code, stdout, stderr (printed, for the log)."""
    proc = subprocess.run([sys.executable, "-m", "scorer.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)
    print(f"\n$ scorer {' '.join(args)}   [exit {proc.returncode}]\n{proc.stdout}{proc.stderr}")
    return proc.returncode, proc.stdout, proc.stderr


def clean_stderr(stderr: str) -> list[str]:
    """stderr's lines, after checking that no client was left open and nothing crashed."""
    assert "Unclosed" not in stderr and "Traceback" not in stderr, stderr
    return stderr.splitlines()
