"""A bounded coverage-guided run of tests/fuzz/atheris_harness.py (atheris, libFuzzer).

Seeds are real records of every kind and the heads of real captures of every format, so
the mutations start from inputs that reach deep into the adapters and readers. CI budget:
SCORER_ATHERIS_RUNS (default 15000) inputs or SCORER_ATHERIS_SECONDS (default 30),
whichever comes first (docs/reliability.md's long run did 691,287 in 900 s: 15000 in ~20 s). A long run:

    SCORER_ATHERIS_RUNS=2000000 SCORER_ATHERIS_SECONDS=3600 pytest -s tests/fuzz/test_atheris.py
"""

from __future__ import annotations

import gzip
import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from scorer.events.structs import EventKind
from tests.support.captures import evtx_bytes
from tests.support.paths import DATA_DIR, ROOT
from tests.support.samples import SAMPLES, edr_sample

pytestmark = pytest.mark.data

pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")

HARNESS = Path(__file__).with_name("atheris_harness.py")
RUNS = int(os.environ.get("SCORER_ATHERIS_RUNS", "15000"))
SECONDS = int(os.environ.get("SCORER_ATHERIS_SECONDS", "30"))
SUFFIXES = [".log", ".csv", ".jsonl", ".json", ".jsonl.gz", ".zip", ".evtx"]  # as in the harness
KINDS = [None, *EventKind]


def _head(path: Path, n: int) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return b"".join(fh.readline() for _ in range(n))


def _seeds() -> dict[str, bytes]:
    seeds: dict[str, bytes] = {}
    for kind in EventKind:
        for i, (_, _, value) in enumerate(SAMPLES[kind]()[::25]):
            seeds[f"decode-{kind.value}-{i}"] = bytes([0, KINDS.index(kind)]) + value
    otrf = b"\n".join(v for _, _, v in edr_sample()[:5])
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("a.json", otrf)
    files = {
        ".log": _head(DATA_DIR / "netflow" / "stratosphere-zeek" / "008-conn.log.labeled", 12),
        ".csv": _head(DATA_DIR / "netflow" / "cic-ids2017-improved" / "BENIGN_2500.csv", 3),
        ".jsonl": otrf,
        ".json": edr_sample()[-1][2],
        ".jsonl.gz": gzip.compress(_head(DATA_DIR / "siem" / "ait-ads" / "wardbeck_alerts.csv.gz", 5)),
        ".zip": packed.getvalue(),
        ".evtx": evtx_bytes(),
    }
    for suffix, body in files.items():
        seeds[f"read{suffix}"] = bytes([1, SUFFIXES.index(suffix)]) + body
    return seeds


def test_atheris_coverage_guided_run_finds_no_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, data in _seeds().items():
        (corpus / name).write_bytes(data)
    cmd = [sys.executable, str(HARNESS), str(corpus), f"-runs={RUNS}", f"-max_total_time={SECONDS}",
           "-max_len=65536", "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCORER_ATHERIS_WORKDIR": str(tmp_path)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=SECONDS + 120)
    done = re.search(r"Done (\d+) runs in (\d+) second", proc.stderr)
    cov = re.findall(r"cov: (\d+) ft: (\d+)", proc.stderr)
    crashes = sorted(p.name for p in tmp_path.glob("crash-*"))
    print(f"\natheris: {done.group(1) if done else '?'} inputs in {done.group(2) if done else '?'}s, "
          f"{len(list(corpus.iterdir()))} corpus entries, final cov/ft {cov[-1] if cov else '?'}")
    assert proc.returncode == 0 and not crashes, f"{crashes}\n{proc.stderr[-4000:]}"
    assert done is not None
