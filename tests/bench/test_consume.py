"""`python -m scorer.bench.consume` on the real broker: each variant reads the whole preloaded
stream in its own process and reports its CPU per event (printed, never asserted as speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.kafka import KafkaBroker
from tests.support.paths import ROOT


def test_every_variant_reads_the_whole_stream(kafka: KafkaBroker, tmp_path: Path) -> None:
    out = tmp_path / "consume.json"
    proc = subprocess.run(
        [sys.executable, "-m", "scorer.bench.consume", "--bootstrap", kafka.bootstrap, "--events", "6000",
         "--rounds", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    assert {r["variant"] for r in results} >= {"aiokafka", "aiokafka-crc", "aiokafka-getmany"}
    for r in results:
        # Timed from the end of the first fetch: every later record counted, none twice.
        assert 0 < r["events"] < 6000 and r["cpu_us_per_event"] > 0, r
