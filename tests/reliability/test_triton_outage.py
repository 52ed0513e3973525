"""Triton outage: the scorer's own tritonserver is stopped for ~12 s mid-stream (longer with
SCORER_RELIABILITY_OUTAGE_S).

``fallback`` (SCORER_INFERENCE__ON_TRITON_OUTAGE=fallback): batches are scored in process
by ONNX Runtime meanwhile, and every alert says which backend scored it.
``pause``: consumption stops (scorer_consumption_paused=1; the backlog waits in Kafka, not
in the scorer's memory) and resumes when Triton is back; every event is scored by Triton.
Either way no event is lost or duplicated and the scorer's RSS stays under a cap.

Scheduled on observed progress, not on time: Triton goes down once the scorer has scored
LEAD events, and the stream (no fixed length) flows through the outage until the scorer has
scored TAIL more after Triton is back, so the outage lands mid-stream on any machine.

Reproduce: pytest -s tests/reliability/test_triton_outage.py
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from tests.support.faults import LiveFeed, RssWatch, new_topics, running_scorer, score_backends, scorer_env
from tests.support.kafka import KafkaBroker
from tests.support.triton import TritonServer

pytestmark = [pytest.mark.data, pytest.mark.slow]

OUTAGE_S = float(os.environ.get("SCORER_RELIABILITY_OUTAGE_S", "12"))
RATE = 400.0
LEAD = int(RATE * 6)  # events scored before the outage
TAIL = int(RATE * 6)  # events scored after Triton is back, before the stream ends
RSS_GROWTH_CAP_MB = 150.0  # peak RSS over the RSS before the outage


@pytest.mark.parametrize("mode", ["fallback", "pause"])
async def test_triton_outage_loses_nothing(
    kafka: KafkaBroker, own_triton: TritonServer, model_repository: Path, tmp_path: Path, mode: str
) -> None:
    topics = await new_topics(kafka)
    env = scorer_env(
        kafka.bootstrap, topics, triton=own_triton, repository=model_repository,
        SCORER_INFERENCE__TRITON_TIMEOUT_S="1",
        SCORER_INFERENCE__ON_TRITON_OUTAGE=mode,
    )
    async with running_scorer(env, tmp_path / "scorer.log") as proc:
        with RssWatch(lambda: proc.pid) as rss:
            live = LiveFeed.start(kafka, topics, "t", rate=RATE)
            await proc.scored_more(LEAD)
            before_outage = max(rss.samples)
            await asyncio.to_thread(own_triton.stop)
            down_at = time.monotonic()
            paused_during: list[float] = []
            scored_during: list[float] = []
            ready_during: set[int] = set()
            while time.monotonic() - down_at < OUTAGE_S:
                paused_during.append(proc.metric("scorer_consumption_paused"))
                ready_during.add(proc.get("/readyz")[0])
                scored_during.append(proc.metric("scorer_events_scored_total"))
                await asyncio.sleep(1.0)
            produced_in_outage = live.produced
            await asyncio.to_thread(own_triton.restart)
            print(f"\ntriton down {time.monotonic() - down_at:.1f}s (restart took {own_triton.start_seconds:.1f}s)")
            await proc.scored_more(TAIL)
            live.stop()
            sent, ledger, outputs = await live.outcomes()
            ready_after = (await asyncio.to_thread(proc.get, "/readyz"))[0]  # resumed: everything scored
            assert proc.pid is not None, f"scorer died during the outage:\n{proc.log_tail()}"
            rc = proc.stop()
    report = ledger.report(outputs)
    backends = score_backends(outputs, topics.scores)
    alert_backends = {json.loads(m.value)["unmapped"]["scorer"]["backend"]
                      for m in outputs if m.topic.startswith(f"{topics.prefix}.alerts.")}
    growth = rss.peak_mb - before_outage / 2**20
    paused_seen = max(paused_during)
    print(f"{mode}: {report}; score backends {sorted(backends)}, alert backends {sorted(alert_backends)}; "
          f"paused={paused_seen:.0f}; /readyz during {sorted(ready_during)} after {ready_after}; "
          f"scored during outage {scored_during[0]:.0f}->{scored_during[-1]:.0f}; "
          f"RSS before outage {before_outage / 2**20:.0f} MB, peak {rss.peak_mb:.0f} MB (+{growth:.0f})")
    assert rc == 0, proc.log_tail()
    assert sent > produced_in_outage, "the stream ended before the outage did"
    assert not report.problems(), report.problems()
    assert report.duplicate_count == 0, report
    assert growth < RSS_GROWTH_CAP_MB
    assert ready_after == 200
    if mode == "fallback":
        assert ready_during == {200}  # still scoring (in process)
        assert backends == {"triton", "onnxruntime"}
        assert alert_backends == {"triton", "onnxruntime"}
    else:
        assert backends == {"triton"}
        assert paused_seen == 1.0
        assert 503 in ready_during  # not ready while consumption is held
        # Nothing scored from the scorer's first report of the pause (not a guess of how many
        # seconds it takes to notice) to the end of the outage: consumption held.
        held = scored_during[paused_during.index(1.0):]
        assert held[0] == held[-1], held
