"""CPU per event of two source trees on the same records, alternated in one run (no broker).

    python -m scorer.bench.stages_ab --before-tree /tmp/base --stream realistic --batch 2048

Both sides run the service's own ``BatchScorer`` (in-process ONNX Runtime) over the very
same record bytes (written once to a file by this process), each in a fresh child process
started with ``python -P`` and the tree first on ``PYTHONPATH``; the children alternate
(before, after, before, ...), so drift in the load of a shared machine falls on both. A
child warms up on the first records, then scores the rest once (every event has a unique
``uid`` and, past the templates' length, a later time: :func:`scorer.bench.loadgen.payloads`)
and reports process CPU time per event, per-stage µs/event and a digest of everything it
would produce: alerts (their wall-clock time fields left out), dead letters and score
records (written by the loop's ``score_records``, inside the clock: the scores topic on, as
in the drain benchmark). Equal digests mean the two trees produce the same outputs, so both
sides must score what they are given: each tree's ``scorer/native`` extension is built from its own
``_native.c`` first (a stale build once dead-lettered every flow on both sides, and the
digests still matched), and a run whose sides dead-letter different shares of the events,
or most of them, is refused (:mod:`scorer.bench.abtrees`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve()


def _normalised(alert: bytes) -> bytes:
    """An alert's JSON without the wall-clock time it was built at."""
    doc = json.loads(alert)
    now = doc.pop("time", None)
    meta = doc.get("metadata", {})
    for key in [k for k, v in meta.items() if v == now]:
        del meta[key]
    return json.dumps(doc, sort_keys=True).encode()


async def _child(path: Path, warm: int, batch: int, measure: int | None = None, check: bool = True) -> dict[str, Any]:
    """Runs in the tree under test: only APIs both trees have."""
    import msgspec

    from scorer.config import Settings
    from scorer.events.structs import EventKind
    from scorer.pipeline.sink import score_records
    from scorer.pipeline.source import input_record
    from scorer.service.build import build_scorer
    from scorer.service.gctune import tune_gc

    items = pickle.loads(path.read_bytes())
    records = [
        input_record(EventKind(kind), value, key, f"events.{kind}", 0, i) for i, (kind, key, value) in enumerate(items)
    ]
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))  # type: ignore[arg-type]
    for i in range(0, warm, batch):
        await scorer.score(records[i : min(i + batch, warm)])
    tune_gc()
    digest = hashlib.sha256()
    stages: dict[str, float] = defaultdict(float)
    alerts = 0
    reasons: Counter[str] = Counter()
    encoder = msgspec.json.Encoder()
    measured = records[warm:] if measure is None else records[warm : warm + measure]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    outcomes = []
    for i in range(0, len(measured), batch):
        outcome = await scorer.score(measured[i : i + batch])
        # The score records as the loop writes them (the scores topic on, as in the drain bench).
        t_records = time.perf_counter()
        written = score_records("scores", outcome.scores, encoder)
        stages["score_records"] += time.perf_counter() - t_records
        for stage, seconds in outcome.timings.items():
            stages[stage] += seconds
        if getattr(outcome, "spent", None) is not None:
            # What scoring made goes now, on the clock, as the loop frees it after each hand-over: kept
            # with every outcome for the check below, 20,000 events' objects made the collector's
            # young passes (mostly inside decode) ~1 us an event slower.
            outcome.spent = None
        outcomes.append((outcome, written))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    for outcome, written in outcomes if check else ():  # outside the clock: checking is not scoring
        for alert in outcome.alerts:
            digest.update(alert.topic.encode() + (alert.key or b"") + _normalised(alert.value))
        for letter in outcome.dead_letters:
            digest.update(letter.topic.encode() + letter.value + repr(letter.headers).encode())
            reasons[dict(letter.headers or ()).get("scorer.dlq.reason", b"?").decode()] += 1
        for score in written:
            digest.update(score.topic.encode() + (score.key or b"") + score.value)
        alerts += len(outcome.alerts)
    n = max(len(measured), 1)
    return {
        "events": len(measured),
        "cpu_us": cpu / n * 1e6,
        "wall_us": wall / n * 1e6,
        "stages_us": {k: v / n * 1e6 for k, v in stages.items()},
        "alerts": alerts,
        "dead_letters": sum(reasons.values()),
        "dead_letter_reasons": dict(reasons),
        "native": _native_in_use(),
        "digest": digest.hexdigest(),
    }


def _native_in_use() -> bool | None:
    """Whether the tree's native part runs in this child (None: a tree from before it)."""
    try:
        import scorer.native
    except ImportError:
        return None
    return scorer.native.module() is not None


def _run_child(
    tree: Path, path: Path, args: argparse.Namespace, measure: int | None = None, valgrind: bool = False
) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    # Both sides with one engine whatever their trees' defaults (ONNX Runtime unless told).
    env.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "onnxruntime")
    cmd = [sys.executable, "-P", str(_HERE), "--child", str(path), "--warm", str(args.warm)]
    cmd += ["--batch", str(args.batch[0])]
    if measure is not None:
        cmd += ["--measure", str(measure)]
    if valgrind:  # instructions of scoring only: the output check would count too
        cmd += ["--no-check"]
        # Set and dict orders (string hashing) change a run's instruction count by a little, and
        # an idle BLAS or OpenMP pool thread spinning would count too.
        env.update(PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        counts = path.with_name(f"cachegrind-{os.getpid()}.out")
        cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={counts}", *cmd]
    out = subprocess.run(cmd, env=env, cwd=tree, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if valgrind:
        refs = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
        if refs is None:
            raise RuntimeError(f"no instruction count in valgrind's output: {out.stderr[-500:]}")
        result["instructions"] = int(refs.group(1).replace(",", ""))
        from scorer.bench import cgsplit
        from scorer.bench.abtrees import unsymbolised

        result["unsymbolised"] = unsymbolised(counts)
        result["components"] = cgsplit.counts(counts, cgsplit.native_functions(tree / "scorer" / "native"))
        counts.unlink()
    return result


def _instructions(sides: dict[str, Path], path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Instructions per event of each side, under valgrind: a run scoring ``--valgrind-events``
    after the warm-up, less a run scoring none (start-up, loading, warm-up), per event. The
    count does not move with the machine's load, which process time does."""
    from scorer.bench.cgsplit import per_event, table

    out: dict[str, Any] = {}
    splits: dict[str, dict[str, float]] = {}  # each side's instructions per event by component
    for tree in sides.values():  # bytecode compiled once outside the count
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(tree / "scorer")], check=True, capture_output=True
        )
    for side, tree in sides.items():
        full = _run_child(tree, path, args, args.valgrind_events, valgrind=True)
        base = _run_child(tree, path, args, 0, valgrind=True)
        out[side] = (full["instructions"] - base["instructions"]) / full["events"]
        # The warm-up-only child's count moves by 200-400M between identical runs, mostly in code
        # without symbols (ONNX Runtime's stripped library; benchmarks.md sections 10 and 12):
        # whole runs, and their part with symbols, are the steadier figures for a small change.
        out[f"{side}_whole_run"], out[f"{side}_warm_up_only"] = full["instructions"], base["instructions"]
        out[f"{side}_whole_run_unsymbolised"] = full["unsymbolised"]
        splits[side] = out[f"{side}_components"] = per_event(full["components"], base["components"], full["events"])
        print(f"{side:>6}: {out[side]:,.0f} instructions per event ({full['events']} events); whole run "
              f"{full['instructions']:,} ({full['unsymbolised']:,} without symbols), warm-up only "
              f"{base['instructions']:,}", flush=True)
    print(table(splits), flush=True)
    return out


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-tree", type=Path, help="source tree of the code before (e.g. a git worktree)")
    parser.add_argument("--after-tree", type=Path, default=_HERE.parents[2], help="default: this tree")
    parser.add_argument("--batch", type=int, action="append", help="micro-batch size (default 2048)")
    parser.add_argument("--events", type=int, default=24000, help="measured events per child")
    parser.add_argument("--warm", type=int, default=16000,
                        help="events scored before measuring (default 16000: the realistic stream's ~15,000 "
                             "templates once, so the rule engine's caches and long-value scanners are built)")
    parser.add_argument("--rounds", type=int, default=3, help="children per side, alternated")
    parser.add_argument("--valgrind-events", type=int, default=0,
                        help="also count instructions per event under valgrind over this many events, and where "
                             "they go by component (scorer.bench.cgsplit; 0: not; a few thousand take minutes)")
    parser.add_argument("--max-dead-share", type=float, default=0.01,
                        help="refuse the run when a side dead-letters more than this share of its events "
                             "(default 0.01)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-check", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help="write the results as JSON here")
    from scorer.bench.realistic import add_stream_arguments

    add_stream_arguments(parser)
    args = parser.parse_args()
    args.batch = args.batch or [2048]
    if len(args.batch) > 1:  # one size per run: the children measure one
        parser.error("one --batch per run (run it again for another size)")
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child, args.warm, args.batch[0], args.measure, not args.no_check))))
        return
    if args.before_tree is None:
        parser.error("--before-tree is required")
    from scorer.bench.abtrees import build_native
    from scorer.bench.loadgen import payloads, templates
    from scorer.bench.realistic import stream_templates
    from scorer.bench.stages_ab_report import report  # not in the child: an older tree may not have it
    from scorer.demo import bundled_capture
    from scorer.events.structs import EventKind

    tpl = stream_templates(args, templates(bundled_capture(), tuple(EventKind)))
    items = [(kind.value, key, value) for kind, key, value in payloads(tpl, args.warm + args.events)]
    sides = {"before": args.before_tree.resolve(), "after": args.after_tree.resolve()}
    for tree in sides.values():
        build_native(tree)
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="stages-ab-") as tmp:
        path = Path(tmp) / "records.pickle"
        path.write_bytes(pickle.dumps(items))
        for r in range(args.rounds):
            for side, tree in sides.items():
                load = _load()
                result = _run_child(tree, path, args)
                result["load"] = load
                runs[side].append(result)
                print(
                    f"round {r + 1} {side:>6}: cpu {result['cpu_us']:.2f} µs/event  "
                    f"wall {result['wall_us']:.2f}  alerts {result['alerts']}  "
                    f"dead letters {result['dead_letters']}  native {result.get('native')}  load {load}",
                    flush=True,
                )
        instructions = _instructions(sides, path, args) if args.valgrind_events else {}
    report(runs, instructions, args)


if __name__ == "__main__":
    main()
