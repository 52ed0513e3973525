"""Slow downstream: the broker throttles the scorer's produce requests (a client quota,
``producer_byte_rate`` on the scorer's client id, set through AlterClientQuotas) while
~100 MB of large events arrive as fast as the test can write them.

The scorer must not buffer the backlog: at most batch.max_inflight micro-batches wait for
their acks before the loop stops fetching, and aiokafka's fetcher holds at most one
fetched chunk per partition (max_partition_fetch_bytes), so the backlog stays in Kafka
and the scorer's RSS stays under a cap far below the backlog. Then the quota is lifted and
everything must come out: nothing lost.

Reproduce: pytest -s tests/reliability/test_backpressure.py
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.support.faults import (
    Ledger,
    RssWatch,
    ScorerProcess,
    feed,
    make_stream,
    new_topics,
    plaintext,
    read_topics,
    score_backends,
    scorer_env,
    set_produce_quota,
    stopped_on_exit,
)
from tests.support.kafka import KafkaBroker
from tests.support.triton import TritonServer

pytestmark = pytest.mark.data


PAD = 16_000  # bytes added to each event: a big backlog from few records
EVENTS = 6_000
QUOTA = 50_000.0  # bytes/s the scorer may produce while throttled
RSS_GROWTH_CAP_MB = 64.0  # the backlog is ~100 MB: an unbounded buffer could not stay under


async def test_slow_produce_keeps_backlog_in_kafka_not_in_memory(
    kafka: KafkaBroker, own_triton: TritonServer, model_repository: Path, tmp_path: Path
) -> None:
    topics = await new_topics(kafka)
    records = make_stream(topics.kinds, "s", EVENTS // len(topics.kinds), pad=PAD)
    backlog_mb = sum(len(r.value) for r in records) / 2**20
    env = scorer_env(kafka.bootstrap, topics, triton=own_triton, repository=model_repository)
    client_id = env["SCORER_KAFKA__CLIENT_ID"]
    await set_produce_quota(kafka.bootstrap, client_id, QUOTA)
    proc = ScorerProcess(env, tmp_path / "scorer.log")
    ledger = Ledger.of(records, topics)
    try:
        with stopped_on_exit(proc), RssWatch(lambda: proc.pid) as rss:
            proc.start()
            await proc.wait_ready()
            await asyncio.sleep(2)
            baseline = max(rss.samples)
            t0 = time.monotonic()
            sent = await feed(plaintext(kafka), topics, records, rate=3000)
            await asyncio.sleep(5)  # let a buffering consumer show itself
            throttled_s = time.monotonic() - t0
            consumed = proc.metric("scorer_events_consumed_total")
            produce_s = proc.metric("scorer_stage_seconds_sum{stage=\"produce_commit\"")
            peak_throttled = rss.peak_mb
            await set_produce_quota(kafka.bootstrap, client_id, None)
            outputs = await read_topics(plaintext(kafka), topics.all_outputs(), ledger.complete, timeout=150)
            assert proc.pid is not None, f"scorer died:\n{proc.log_tail()}"
            rc = proc.stop()
    finally:
        await set_produce_quota(kafka.bootstrap, client_id, None)
    report = ledger.report(outputs)
    growth = peak_throttled - baseline / 2**20
    print(f"\nbackpressure: {sent} events ({backlog_mb:.0f} MB) in; in {throttled_s:.0f}s throttled to "
          f"{QUOTA / 1000:.0f} kB/s the scorer consumed {consumed:.0f} ({produce_s:.0f}s in produce+commit), "
          f"{sent - consumed:.0f} waited in Kafka; RSS {baseline / 2**20:.0f} MB -> peak {peak_throttled:.0f} MB "
          f"(+{growth:.0f} MB, cap +{RSS_GROWTH_CAP_MB:.0f}); overall peak {rss.peak_mb:.0f} MB; {report}")
    assert rc == 0, proc.log_tail()
    assert sent - consumed > sent / 2, "produce was not slow enough to build a backlog"
    assert (sent - consumed) / sent * backlog_mb > 1.2 * RSS_GROWTH_CAP_MB, "backlog too small to prove the cap"
    assert growth < RSS_GROWTH_CAP_MB
    assert not report.problems(), report.problems()
    assert report.duplicate_count == 0, report
    assert score_backends(outputs, topics.scores) == {"triton"}
