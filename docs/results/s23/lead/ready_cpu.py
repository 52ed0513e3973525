"""CPU a `scorer run` process spends until /readyz answers 200 (start-up: imports, models, rule
packs, Kafka clients, the group joined), on the local broker, trees alternated round by round.
    SCORER_DATA_DIR=../shared/data .venv/bin/python docs/results/s23/lead/ready_cpu.py ROUNDS TREE [TREE...]
Each TREE a checkout with its natives built (the first usually the repo root); the service's defaults
(in-process scoring, its default engine)."""
import os, signal, subprocess, sys, time, urllib.request, uuid

def one(tree: str, port: int) -> tuple[float, float]:
    run = f"ready-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "PYTHONPATH": tree, "SCORER_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9092",
           "SCORER_KAFKA__GROUP_ID": run, "SCORER_TOPICS__ALERTS_PREFIX": f"{run}.alerts.",
           "SCORER_TOPICS__DEAD_LETTER": f"{run}.dlq", "SCORER_HTTP__PORT": str(port), "SCORER_LOG_LEVEL": "WARNING"}
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "scorer.cli", "run"], cwd=tree, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
                break
        except Exception:
            pass
        if p.poll() is not None:
            raise SystemExit(f"{tree}: exited {p.returncode}")
        time.sleep(0.02)
    wall = time.monotonic() - t0
    with open(f"/proc/{p.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    p.send_signal(signal.SIGTERM); p.wait(30)
    return cpu, wall

rounds, trees = int(sys.argv[1]), sys.argv[2:]
for r in range(rounds):
    for i, tree in enumerate(trees):
        cpu, wall = one(tree, 18600 + i)
        print(f"round {r} {tree}: {cpu:.2f} s CPU, ready after {wall:.2f} s", flush=True)
