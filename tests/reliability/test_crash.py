"""Crash: `kill -9` of `scorer run` at random points of a live stream, again and again.

At-least-once (default): after the last restart every input has its score or dead letter;
duplicates are bounded by the micro-batches in flight at each crash (pipelined delivery:
up to batch.max_inflight, plus a commit on the wire) and carry the event uid.
Exactly-once (SCORER_KAFKA__TRANSACTIONAL=true): a read_committed reader of the scores and
alerts topics sees every event once; crashed transactions are aborted by the restarted
process, which reuses the same transactional.id and so fences its dead predecessor.

Reproduce: SCORER_RELIABILITY_SEED=<seed printed> pytest -s tests/reliability/test_crash.py
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import pytest

from tests.reliability.support import (
    Ledger,
    ScorerProcess,
    alert_uids,
    feed,
    make_stream,
    new_topics,
    plaintext,
    read_topics,
    score_backends,
    scorer_env,
    seed,
    stopped_on_exit,
)
from tests.support.kafka import KafkaBroker
from tests.support.triton import TritonServer

pytestmark = pytest.mark.integration

CRASHES = int(os.environ.get("SCORER_RELIABILITY_CRASHES", "10"))
BATCH = 64  # SCORER_BATCH__MAX_RECORDS
INFLIGHT = 4  # SCORER_BATCH__MAX_INFLIGHT (the default): batches delivered but not yet committed
# At-least-once: a crash repeats at most the batches in flight (pipelined delivery) plus the
# ones whose coalesced commit was on the wire.
DUPLICATE_BOUND = CRASHES * BATCH * (INFLIGHT + 1)
RATE = 500.0  # input events per second while the scorer is being killed


async def _crash_loop(
    kafka: KafkaBroker, triton: TritonServer, repository: Path, tmp_path: Path, *, transactional: bool
) -> None:
    rng = random.Random(seed())
    topics = await new_topics(kafka)
    records = make_stream(topics.kinds, "c", per_kind=int(RATE * CRASHES * 3 / len(topics.kinds)))
    env = scorer_env(
        kafka.bootstrap, topics, triton=triton, repository=repository,
        SCORER_BATCH__MAX_RECORDS=str(BATCH),
        SCORER_BATCH__MAX_INFLIGHT=str(INFLIGHT),
        SCORER_KAFKA__TRANSACTIONAL="true" if transactional else "false",
        # Static membership: the restarted process takes its partitions back at once
        # instead of waiting out the dead member's session (6 s per crash otherwise).
        SCORER_KAFKA__GROUP_INSTANCE_ID=f"{topics.prefix}-0",
    )
    proc = ScorerProcess(env, tmp_path / "scorer.log")
    ledger = Ledger({uid for *_, uid in records}, topics.scores, topics.dlq)
    progress = [0]
    started = time.monotonic()
    with stopped_on_exit(proc):
        feeder = asyncio.create_task(feed(plaintext(kafka), topics, records, rate=RATE, progress=progress))
        kills: list[str] = []
        for crash in range(CRASHES):
            proc.start()
            await proc.wait_ready()
            # Random point: some kills land in the first batches after the join, some deep
            # into a stream of batches; the scraped count shows where each one hit.
            await asyncio.sleep(rng.uniform(0.3, 2.5))
            consumed = proc.metric("scorer_events_consumed_total")
            # The scrape is served between batches: wait a little longer so the kill is not
            # biased towards an idle loop.
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            proc.kill()
            kills.append(f"#{crash}: {consumed:.0f} consumed, {progress[0]} produced")
        proc.start()
        sent = await feeder
        outputs = await read_topics(plaintext(kafka), topics.all_outputs(), ledger.complete, timeout=120)
        rc = proc.stop()
    report = ledger.report(outputs)
    print(f"\n{'exactly-once' if transactional else 'at-least-once'}: {CRASHES} x kill -9 in "
          f"{time.monotonic() - started:.0f}s; {report}\n  " + "\n  ".join(kills))
    assert sent == len(records)
    assert rc == 0, proc.log_tail()
    assert not report.lost, f"{len(report.lost)} events lost, e.g. {report.lost[:5]}"
    assert not report.unexpected, report.unexpected[:5]
    assert score_backends(outputs, topics.scores) == {"triton"}
    alerts = alert_uids(outputs, topics.prefix)
    alert_dups = sum(n - 1 for n in alerts.values())
    print(f"  alerts: {sum(alerts.values())} for {len(alerts)} events, {alert_dups} duplicates")
    if transactional:
        assert report.duplicate_count == 0, f"duplicates under read_committed: {report.duplicates}"
        assert alert_dups == 0
        # Evidence that kills landed inside transactions: a read_uncommitted reader sees
        # the aborted records that read_committed hides.
        committed = sum(m.topic == topics.scores for m in outputs)
        raw = await read_topics(plaintext(kafka), [topics.scores], lambda got: len(got) >= committed,
                                timeout=30, isolation="read_uncommitted", settle=0.5)
        print(f"  read_uncommitted sees {len(raw) - committed} aborted score records more")
    else:
        assert report.duplicate_count <= DUPLICATE_BOUND, report
        assert alert_dups <= DUPLICATE_BOUND


async def test_kill9_repeatedly_loses_nothing_at_least_once(
    kafka: KafkaBroker, own_triton: TritonServer, model_repository: Path, tmp_path: Path
) -> None:
    await _crash_loop(kafka, own_triton, model_repository, tmp_path, transactional=False)


async def test_kill9_repeatedly_no_duplicates_exactly_once(
    kafka: KafkaBroker, own_triton: TritonServer, model_repository: Path, tmp_path: Path
) -> None:
    await _crash_loop(kafka, own_triton, model_repository, tmp_path, transactional=True)
