"""The fetch side of a record, which scorer.bench.stages_ab does not see (its records are built
before the clock starts and live to the end): ``scorer.pipeline.source._inputs`` over real
aiokafka record batches, each batch's records freed when the next batch's are built, as the
scoring loop holds them. Two trees alternated in child processes, as stages_ab does.

    python docs/results/s16/hrec/inputs_ab.py --before-tree /tmp/hrec_base --stream realistic --batch 2048
    ... --valgrind 20000   # instructions per record instead (a run building N records less one building none)
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve()


def _child(path: Path, batch: int, passes: int, parse_passes: int) -> dict[str, Any]:
    from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

    import scorer.native
    from scorer.events.structs import EventKind
    from scorer.pipeline.source import _inputs
    from scorer.service.gctune import tune_gc

    items = pickle.loads(path.read_bytes())
    buffers: list[tuple[str, EventKind, bytes]] = []  # each kind's records in batches, as its topic holds them
    for kind in sorted({k for k, _, _ in items}):
        mine = [(key, value) for k, key, value in items if k == kind]
        for start in range(0, len(mine), batch):
            builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 30)
            for i, (key, value) in enumerate(mine[start:start + batch]):
                builder.append(i, 1_700_000_000_000 + i, key, value, [])
            buffers.append((f"events.{kind}", EventKind(kind), bytes(builder.build())))
    tune_gc()
    built = 0
    held: list[Any] = []
    cpu0 = time.process_time()
    for _ in range(passes):
        for topic, kind, buf in buffers:
            held = _inputs(topic, 0, kind, DefaultRecordBatch(buf))  # the last batch's freed here
            built += len(held)
    cpu = time.process_time() - cpu0
    held = []
    cpu0 = time.process_time()  # aiokafka's record objects alone: the part both sides share
    for _ in range(parse_passes):
        for _, _, buf in buffers:
            held[:] = DefaultRecordBatch(buf)
    parse = time.process_time() - cpu0
    return {"records": built, "cpu_us": cpu / max(built, 1) * 1e6,
            "parse_us": parse / max(parse_passes * len(items), 1) * 1e6,
            "native": scorer.native.module("_kafka") is not None}


def _run(tree: Path, path: Path, batch: int, passes: int, valgrind: bool, parse_passes: int | None = None,
         ) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, "-P", str(_HERE), "--child", str(path), "--batch", str(batch), "--passes", str(passes),
           "--parse-passes", str(passes if parse_passes is None else parse_passes)]
    if valgrind:
        counts = path.with_name("cachegrind.out")
        cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={counts}", *cmd]
    out = subprocess.run(cmd, env=env, cwd=tree, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if valgrind:
        refs = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
        assert refs is not None, out.stderr[-500:]
        result["instructions"] = int(refs.group(1).replace(",", ""))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-tree", type=Path)
    parser.add_argument("--after-tree", type=Path, default=_HERE.parents[4])
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--records", type=int, default=24576, help="distinct records (each pass builds them all)")
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="children per side, alternated")
    parser.add_argument("--valgrind", type=int, default=0, help="instructions per record over this many records")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--parse-passes", type=int, help=argparse.SUPPRESS)
    from scorer.bench.realistic import add_stream_arguments

    add_stream_arguments(parser)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.batch, args.passes, args.parse_passes)))
        return
    from scorer.bench.loadgen import payloads, templates
    from scorer.bench.realistic import stream_templates
    from scorer.demo import bundled_capture
    from scorer.events.structs import EventKind

    tpl = stream_templates(args, templates(bundled_capture(), tuple(EventKind)))
    items = [(kind.value, key, value) for kind, key, value in payloads(tpl, args.records)]
    sides = {"before": args.before_tree.resolve(), "after": args.after_tree.resolve()}
    with tempfile.TemporaryDirectory(prefix="inputs-ab-") as tmp:
        path = Path(tmp) / "records.pickle"
        path.write_bytes(pickle.dumps(items))
        if args.valgrind:
            passes = max(1, args.valgrind // args.records)
            for side, tree in sides.items():
                full, none = _run(tree, path, args.batch, passes, True, 0), _run(tree, path, args.batch, 0, True, 0)
                per = (full["instructions"] - none["instructions"]) / full["records"]
                print(f"{side:>6}: {per:,.0f} instructions per record ({full['records']} records, batch "
                      f"{args.batch}, native {full['native']})", flush=True)
            parse = _run(sides["after"], path, args.batch, 0, True, passes)  # aiokafka's records alone
            per = (parse["instructions"] - none["instructions"]) / (passes * len(items))
            print(f"of which aiokafka's record objects (both sides): {per:,.0f} instructions per record", flush=True)
            return
        runs: dict[str, list[float]] = {side: [] for side in sides}
        for r in range(args.rounds):
            for side, tree in sides.items():
                result = _run(tree, path, args.batch, args.passes, False)
                runs[side].append(result["cpu_us"])
                print(f"round {r + 1} {side:>6}: {result['cpu_us']:.3f} µs/record, of which aiokafka's records "
                      f"{result['parse_us']:.3f} ({result['records']} records, native {result['native']})", flush=True)
    b, a = statistics.median(runs["before"]), statistics.median(runs["after"])
    print(f"batch {args.batch}: median before {b:.3f} after {a:.3f} µs/record, after/before {a / b:.2f}")


if __name__ == "__main__":
    main()
