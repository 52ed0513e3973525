"""The streams jobs against a broker that is not there: one clear line and exit 1, no
traceback and no client left open (what `scorer`'s own commands do, tests/lifecycle/
test_offline_cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.kafka import free_ports
from tests.support.paths import ROOT


@pytest.mark.parametrize("job", [[], ["incidents"]], ids=["profiles", "incidents"])
def test_job_against_a_stopped_broker_fails_in_one_line(job: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORER_")}
    env["SCORER_KAFKA__BOOTSTRAP_SERVERS"] = f"127.0.0.1:{free_ports(1)[0]}"  # nothing listens there
    port = free_ports(1)[0]
    proc = subprocess.run([sys.executable, "-m", "streams", *job, "--metrics-port", str(port)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Unclosed" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m streams: cannot talk to Kafka: KafkaConnectionError: Unable to bootstrap"), last
