"""The stage bench (capture or realistic, 2048-record batches) with the collector's young threshold at
50,000 (the service's), 200,000, or the collector off, alternated in fresh processes.
    SCORER_DATA_DIR=../shared/data .venv/bin/python docs/results/s25/lead/gc_ab.py STREAM ROUNDS"""
import os
import subprocess
import sys

CHILD = """
import gc, sys
import scorer.bench.stages as st
from scorer.service.gctune import tune_gc
young = int(sys.argv[1])
st.tune_gc = (lambda: (tune_gc(), gc.disable())) if young == 0 else (lambda: tune_gc(young))
sys.argv = ["stages", "--stream", sys.argv[2], "--batch", "2048", "--events", "60000", "--warm", "16000",
            "--out", "/dev/null"]
st.main()
"""

stream, rounds = sys.argv[1], int(sys.argv[2])
env = {**os.environ, "SCORER_INFERENCE__IN_PROCESS_ENGINE": "vectorized"}
for r in range(rounds):
    for young in (50_000, 200_000, 0):
        out = subprocess.run([sys.executable, "-c", CHILD, str(young), stream], env=env, capture_output=True,
                             text=True, check=True).stdout
        line = next(x for x in out.splitlines() if x.startswith("batch  2048"))
        print(f"round {r + 1} young={young or 'off':>7}: {line}", flush=True)
