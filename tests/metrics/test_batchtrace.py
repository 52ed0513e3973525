"""The per-batch trace (SCORER_BATCH_TRACE): one row per acknowledged batch with its size,
its phases, the collections that ran inside its ``score``; nothing at all when off. And the
latency bench's report of the tail batches read from such a trace."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from scorer.bench.latency import tail_report, trace_rows
from scorer.metrics.batchtrace import TRACE_ENV, BatchTrace


def _one_batch(trace: BatchTrace, n: int, collect: bool) -> None:
    trace.fetching()
    trace.fetched()
    if collect:
        gc.collect()
    row = trace.scored(n, {"decode": 0.001, "score": 0.002})
    trace.handed()
    trace.acked(row, latency=0.003, send=0.0001, ack=0.0009)


def test_rows_of_acked_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRACE_ENV, str(tmp_path / "trace.jsonl"))
    trace = BatchTrace.from_env()
    try:
        _one_batch(trace, 50, collect=False)
        _one_batch(trace, 7, collect=True)
    finally:
        trace.close()
    rows = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert [row["records"] for row in rows] == [50, 7]
    assert [row["gcs"] for row in rows] == [0, 1]
    assert rows[1]["gc_ms"] > 0 and rows[1]["score_ms"] >= rows[1]["gc_ms"]
    assert rows[0]["idle_ms"] == 0.0 and rows[1]["idle_ms"] >= 0.0  # none before the first batch
    assert rows[0]["decode_ms"] == 1.0 and "score_ms" in rows[0] and rows[0]["added_ms"] == 3.0
    assert trace._gc not in gc.callbacks


def test_off_without_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRACE_ENV, raising=False)
    trace = BatchTrace.from_env()
    trace.fetching()
    trace.fetched()
    assert trace.scored(3, {}) is None
    trace.acked(None, 0.1, 0.1, 0.1)
    trace.close()
    assert trace.rows == [] and trace._gc not in gc.callbacks


def test_tail_report_picks_the_slow_batches(tmp_path: Path) -> None:
    rows = [{"t": float(i), "records": 50, "added_ms": 1.0 + (i % 7) * 0.01, "score_ms": 1.0, "score_cpu_ms": 0.9,
             "gcs": 0, "ivcsw": 0} for i in range(300)]
    for row in rows[100:103]:  # the tail: slower, each with a collection and a preemption
        row.update(added_ms=5.0, gcs=1, ivcsw=2, score_cpu_ms=0.2)
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    kept = trace_rows(path, (50.0, 250.0))
    assert len(kept) == 201
    report = tail_report(kept)
    assert "p99+   n=   3 added=5.000" in report
    assert "p99+   with gc 3, with ivcsw 3, off-CPU > 1/3 of score 3" in report
    assert "median with gc 0, with ivcsw 0, off-CPU > 1/3 of score 0" in report


async def test_io_is_the_time_other_tasks_took_in_the_turns(tmp_path: Path) -> None:
    import asyncio
    import time

    from scorer.pipeline.turns import serve_io

    trace = BatchTrace(tmp_path / "trace.jsonl")
    try:
        trace.fetching()
        trace.fetched()
        # Another task busy for 20 ms when the batch yields: that is the batch's io.
        asyncio.get_running_loop().call_soon(time.sleep, 0.02)
        await serve_io()
        row = trace.scored(1, {})
    finally:
        trace.close()
    assert row is not None and row["io_ms"] >= 20.0 and row["score_ms"] >= row["io_ms"]


def test_exact_added_counts_each_batch_once_per_record() -> None:
    from scorer.bench.latency import exact_added

    # 99 records at 1 ms in one batch, one record at 9 ms: the record p99 is near 1 ms, the p99.9 near 9.
    rows = [{"added_ms": 1.0, "records": 99.0}, {"added_ms": 9.0, "records": 1.0}]
    got = exact_added(rows)
    assert got["p50"] == 1.0 and got["p99"] == pytest.approx(1.08) and got["p99.9"] == pytest.approx(8.2, abs=0.01)
    assert exact_added([]) == {}
