"""Thread CPU of the decide step in the service's BatchScorer, two source trees alternated in one
run (benchmarks.md section 25): on a shared box the stage timers (wall) carry the load, the
CPU time of the thread running ``decide`` much less.

    PYTHONPATH=. .venv/bin/python docs/results/decide_cpu_ab.py BEFORE_TREE AFTER_TREE \\
        --batch 2048 --warm 16000 --events 24000 --rounds 3 [--out FILE]

Each side is a fresh ``python -P`` child with its tree first on the path (its native part built
first, as scorer.bench.stages_ab does) scoring the bundled capture's records; it prints decide's
thread CPU and the process CPU per event, and a digest of its alerts with their wall-clock time
fields cut out (equal digests: the same alerts, byte for byte, but for those two numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_TIMES = re.compile(rb'"(time|processed_time)":\d+,')


async def _child(warm: int, events: int, batch: int) -> dict[str, Any]:
    import scorer.pipeline.scoring as scoring
    from scorer.bench.loadgen import payloads, templates
    from scorer.config import Settings
    from scorer.demo import bundled_capture
    from scorer.events.structs import EventKind
    from scorer.pipeline.source import input_record
    from scorer.service.build import build_scorer
    from scorer.service.gctune import tune_gc

    tpl = templates(bundled_capture(), tuple(EventKind))
    records = [input_record(kind, value, key, f"events.{kind.value}", 0, i)
               for i, (kind, key, value) in enumerate(payloads(tpl, warm + events))]
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))  # type: ignore[arg-type]
    for i in range(0, warm, batch):
        await scorer.score(records[i : min(i + batch, warm)])
    tune_gc()
    spent = [0.0]
    decide = scoring.decide  # type: ignore[attr-defined]

    def timed(*args: Any) -> Any:
        t0 = time.thread_time()
        try:
            return decide(*args)
        finally:
            spent[0] += time.thread_time() - t0

    scoring.decide = timed  # type: ignore[attr-defined,assignment]
    digest, alerts = hashlib.sha256(), 0
    cpu0 = time.process_time()
    outcomes = [await scorer.score(records[i : i + batch]) for i in range(warm, warm + events, batch)]
    cpu = time.process_time() - cpu0
    for outcome in outcomes:
        for alert in outcome.alerts:
            digest.update(alert.topic.encode() + (alert.key or b"") + _TIMES.sub(b"", alert.value))
            alerts += 1
    return {"decide_cpu_us": spent[0] / events * 1e6, "cpu_us": cpu / events * 1e6, "alerts": alerts,
            "digest": digest.hexdigest()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", type=Path)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--warm", type=int, default=16000)
    parser.add_argument("--events", type=int, default=24000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args.warm, args.events, args.batch))))
        return
    from scorer.bench.abtrees import build_native

    sides = dict(zip(("before", "after"), (t.resolve() for t in args.trees), strict=True))
    for tree in sides.values():
        build_native(tree)
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for r in range(args.rounds):
        for side, tree in sides.items():
            with open("/proc/loadavg") as fh:
                load = " ".join(fh.read().split()[:3])
            cmd = [sys.executable, "-P", __file__, "--child", "--batch", str(args.batch), "--warm", str(args.warm),
                   "--events", str(args.events)]
            out = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree, check=True,
                                 capture_output=True, text=True)
            result = json.loads(out.stdout.strip().splitlines()[-1]) | {"load": load}
            runs[side].append(result)
            print(f"round {r + 1} {side:>6}: decide {result['decide_cpu_us']:.2f} µs/event (thread CPU)  "
                  f"process {result['cpu_us']:.2f}  alerts {result['alerts']}  load {load}", flush=True)
    med = {side: {k: statistics.median(r[k] for r in rs) for k in ("decide_cpu_us", "cpu_us")}
           for side, rs in runs.items()}
    identical = len({r["digest"] for rs in runs.values() for r in rs}) == 1
    print(f"batch {args.batch}: decide {med['before']['decide_cpu_us']:.2f} -> {med['after']['decide_cpu_us']:.2f} "
          f"({med['after']['decide_cpu_us'] / med['before']['decide_cpu_us']:.2f}), process "
          f"{med['before']['cpu_us']:.2f} -> {med['after']['cpu_us']:.2f} "
          f"({med['after']['cpu_us'] / med['before']['cpu_us']:.2f}) µs/event; alerts identical: {identical}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs, "medians": med,
                       "identical_alerts": identical}, fh, indent=2)


if __name__ == "__main__":
    main()
