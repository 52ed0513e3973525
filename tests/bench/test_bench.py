"""`scorer bench` on the real broker: every phase produces numbers (none are asserted as
speed: benchmarks print, tests only check that the measurement is complete and sane)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from scorer.bench.cli import offered_rates
from tests.support.kafka import KafkaBroker
from tests.support.paths import ROOT


def _bench_topics(bootstrap: str) -> set[str]:
    """Every topic but the broker's own and the lifecycle's (``scorer.*``, shared by every
    scorer): the inputs and output of a run, and its runners' alert and dead-letter topics."""
    async def listed() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return {t for t in await admin.list_topics() if not t.startswith(("__", "scorer."))}
        finally:
            await admin.close()

    return asyncio.run(listed())


def test_bench_measures_passthrough_and_the_scorer_side_by_side(kafka: KafkaBroker, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    before = _bench_topics(kafka.bootstrap)
    proc = subprocess.run(
        [sys.executable, "-m", "scorer.cli", "bench", "--bootstrap", kafka.bootstrap, "--events", "20000",
         "--rate", "500", "--rate-seconds", "1", "--repeat", "2", "--runners", "passthrough,scorer-onnxruntime",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    drains = [r for r in report["results"] if not r["rate_offered_eps"]]
    assert [r["runner"] for r in drains] == ["passthrough", "scorer-onnxruntime"] * 2, "drains interleave"
    assert all(r["throughput_eps"] > 0 and not r["note"] for r in drains), drains
    scorer = [r for r in drains if r["runner"] == "scorer-onnxruntime"]
    assert all(r["batch_mean"]["records"] >= 1 and r["batch_mean"]["features_ms"] > 0 for r in scorer)
    rates = {r["runner"]: r for r in report["results"] if r["rate_offered_eps"]}
    for name in ("passthrough", "scorer-onnxruntime"):
        assert set(rates[name]["e2e_ms"]) == {"p50", "p99", "p99.9"}
        assert rates[name]["added_ms"]["p50"] > 0  # both expose scorer_added_latency_seconds
    ratios = report["ratios"]
    assert ratios["passthrough/passthrough"] == 1.0
    assert ratios["scorer-onnxruntime/passthrough"] > 0
    assert _bench_topics(kafka.bootstrap) <= before, "each run deletes its topics, its runners' alerts and DLQ too"


def test_a_rate_of_zero_asks_for_drains_only() -> None:
    assert offered_rates(None) == [10_000.0]
    assert offered_rates([0.0]) == []
    assert offered_rates([500.0, 0.0, 2_000.0]) == [500.0, 2_000.0]
    assert offered_rates(None, [500.0]) == [500.0], "baselines follow --rate unless told"
    assert offered_rates([0.0], [500.0]) == []
    assert offered_rates(None, offered_rates([0.0])) == [], "--rate 0 alone: no baseline phase either"


def test_alerts_only_drains_are_counted_by_the_committed_offsets(kafka: KafkaBroker, tmp_path: Path) -> None:
    """``--outputs alerts``: the scorer writes no score record (the service's default), so the
    drain counts what its group commits; the passthrough still copies every record."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "scorer.cli", "bench", "--bootstrap", kafka.bootstrap, "--events", "20000",
         "--rate", "0", "--outputs", "alerts", "--runners", "passthrough,scorer-vectorized", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    drains = json.loads(out.read_text())["results"]
    assert [r["runner"] for r in drains] == ["passthrough", "scorer-vectorized"]
    assert all(r["throughput_eps"] > 0 and r["cpu_us_per_event"] > 0 and not r["note"] for r in drains), drains


def test_alerts_only_takes_drains_of_the_scorer_and_the_passthrough() -> None:
    for extra in (["--runners", "scorer-vectorized"], ["--rate", "0", "--runners", "scorer-vectorized,quix-app"]):
        proc = subprocess.run([sys.executable, "-m", "scorer.cli", "bench", "--outputs", "alerts", *extra],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and "drains only (--rate 0)" in proc.stderr, proc.stderr[-2000:]
