"""Broker restart mid-stream: the scorer's only broker is restarted cleanly, then killed
(SIGKILL) and started again, while events flow. The scorer reconnects on its own (no restart
of the scorer), resumes, and every input ends scored or dead-lettered.

Scheduled on observed progress, not on time: each fault comes once the scorer has scored
PHASE more events, and the stream (no fixed length) flows until it has scored PHASE more
after the last one, so both faults land mid-stream whatever the speed of the machine.

Reproduce: pytest -s tests/reliability/test_broker_restart.py
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.faults import LiveFeed, finish, new_topics, running_scorer, score_backends, scorer_env
from tests.support.kafka import KafkaBroker
from tests.support.triton import TritonServer

pytestmark = [pytest.mark.data, pytest.mark.slow]

RATE = 400.0
PHASE = int(RATE * 5)  # events the scorer scores before each fault and after the last one


async def test_broker_restart_and_crash_mid_stream_lose_nothing(
    own_kafka: KafkaBroker, own_triton: TritonServer, model_repository: Path, tmp_path: Path
) -> None:
    topics = await new_topics(own_kafka)
    env = scorer_env(own_kafka.bootstrap, topics, triton=own_triton, repository=model_repository)
    async with running_scorer(env, tmp_path / "scorer.log") as proc:
        live = LiveFeed.start(own_kafka, topics, "b", rate=RATE)
        faults: list[str] = []
        for name, fault in (("restart", own_kafka.restart), ("kill -9 + start", _crash(own_kafka))):
            await proc.scored_more(PHASE)
            t0 = time.monotonic()
            await asyncio.to_thread(fault)
            back, scored = time.monotonic(), proc.metric("scorer_events_scored_total")
            # Resumed = it scores new events on its own after the broker came back.
            while proc.metric("scorer_events_scored_total") <= scored and time.monotonic() < back + 60:
                await asyncio.sleep(0.1)
            faults.append(f"broker {name}: down {back - t0:.1f}s, scorer scoring again "
                          f"{time.monotonic() - back:.1f}s after it was back")
        end = await finish(live, proc, PHASE)
        produced_by_then, sent, ledger, outputs, rc = end.produced_by_then, end.sent, end.ledger, end.outputs, end.rc
    report = ledger.report(outputs)
    print("\n" + "\n".join(faults) + f"\nbroker faults: {report}")
    assert sent > produced_by_then, (sent, produced_by_then)  # the stream outlived the faults
    assert rc == 0, proc.log_tail()
    assert not report.problems(), report.problems()
    assert score_backends(outputs, topics.scores) == {"triton"}


def _crash(broker: KafkaBroker) -> Callable[[], None]:
    def crash() -> None:
        pid = broker.pid()
        broker.kill()
        # A SIGKILLed JVM frees its big address space before its sockets, and kafka.sh stops
        # seeing it as the broker meanwhile: wait until the process and its ports are gone.
        ports = [p for p in (broker.port, broker.controller_port, broker.sasl_ssl_port) if p]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (_alive(pid) or any(_listening(p) for p in ports)):
            time.sleep(0.1)
        broker.start_again()

    return crash


def _alive(pid: int | None) -> bool:
    """Still running (a zombie, waiting for init to reap it, holds nothing: not alive)."""
    try:
        return pid is not None and Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False
