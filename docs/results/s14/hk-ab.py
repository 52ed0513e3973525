"""Alternate `scorer bench` drains of two trees (worktrees /tmp/hk-before, /tmp/hk-after) on one broker
(helper H-K, session 14):  python hk-ab.py ROUNDS BOOTSTRAP [FIRST_ROUND] [before,after]"""
import os, subprocess, sys, time, json
from pathlib import Path
sys.path.insert(0, "/work/main")

PY = "/work/main/.venv/bin/python"
OUT = Path("/work/main/docs/results/s14"); OUT.mkdir(parents=True, exist_ok=True)
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
first = int(sys.argv[3]) if len(sys.argv) > 3 else 1  # the first round's number
order = sys.argv[4].split(",") if len(sys.argv) > 4 else ["before", "after"]
bootstrap = sys.argv[2]  # the helper's own broker (tests.support.kafka.KafkaBroker, free ports)
if True:
    for r in range(first, first + rounds):
        for name in order:
            tree = f"/tmp/hk-{name}"
            out = OUT / f"hk-bench-{name}-{r}.json"
            load = os.getloadavg()
            t = time.time()
            p = subprocess.run([PY, "-m", "scorer.cli", "bench", "--bootstrap", bootstrap, "--stream", "realistic",
                                "--runners", "passthrough,scorer-compiled", "--events", "100000", "--repeat", "3",
                                "--rate", "0", "--out", str(out)], cwd=tree, env={**os.environ, "PYTHONPATH": tree, "SCORER_DATA_DIR": "/work/shared/data"},
                               capture_output=True, text=True)
            (OUT / f"hk-bench-{name}-{r}.log").write_text(f"load before {load}, after {os.getloadavg()}\n" + p.stdout + p.stderr)
            print(name, r, "rc", p.returncode, f"{time.time()-t:.0f}s load {load[0]:.1f}->{os.getloadavg()[0]:.1f}", flush=True)
