"""A tritonserver started over a repository holding one version it must refuse (tampered,
unverifiable or badly signed): the launcher loads every mirrored model at start, before a
scorer is there to verify anything, so it must leave that one out and say why."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from scorer.events.structs import EventKind
from tests.support.faults.process import usable_kinds
from tests.support.triton import StartTriton, TritonServer


def model_ready(server: TritonServer, model: str) -> bool:
    try:
        with urllib.request.urlopen(f"{server.http_url}/v2/models/{model}/ready", timeout=5) as resp:
            return int(resp.status) == 200
    except (urllib.error.HTTPError, OSError):
        return False


def triton_refusing(
    stack: contextlib.ExitStack, start_triton: StartTriton, repository: Path, workdir: Path,
    capfd: pytest.CaptureFixture[str], kind: EventKind, *reasons: str,
) -> TritonServer:
    """The server, stopped when ``stack`` closes, after checking that the launcher refused
    exactly one version with every one of ``reasons`` in its line (the version's path among
    them) and serves every kind's model but ``kind``'s."""
    server = start_triton(repository, workdir)
    stack.callback(server.stop)
    refused = [line for line in capfd.readouterr().err.splitlines() if "not serving" in line]
    ready = {k: model_ready(server, f"{k.value}_classifier") for k in usable_kinds()}
    print(f"\nlauncher: {refused}; models ready: {ready}")
    assert len(refused) == 1 and all(r in refused[0] for r in reasons), refused
    assert ready == {k: k != kind for k in usable_kinds()}, f"Triton serves the refused {kind.value} model"
    return server
