"""`scorer demo` works from a clean checkout: only committed files, no Kafka, no Triton."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ocsf_schema
from tests.support.paths import ROOT


@pytest.mark.data  # the OCSF schema the alerts are checked against
def test_demo_on_a_clean_checkout(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    out = tmp_path / "alerts.jsonl"
    env = {**os.environ, "PYTHONPATH": str(clone)}
    proc = subprocess.run(
        [sys.executable, "-m", "scorer.cli", "demo", "--out", str(out)],
        cwd=clone, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    for word in ("events", "alerts", "throughput", "latency (ms)", "p99", "512-event micro-batch"):
        assert word in text, text
    events = int(text.split("events", 1)[1].split()[0])
    assert events > 5000
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert alerts and {a["unmapped"]["scorer"]["kind"] for a in alerts} == {"netflow", "edr", "siem"}
    assert all(a["class_uid"] == 2004 for a in alerts)
    ocsf_schema.assert_valid(alerts)
    assert "dead-lettered 0" in text
