"""CPU per event of the Kafka edges of two source trees, alternated in one run (broker on this machine).

    python -m scorer.bench.edges_ab --before-tree /tmp/base --stream capture --events 120000

The edges are what a drain pays besides scoring: consuming the inputs (the scoring loop's
fetch into ``InputRecord``s, :mod:`scorer.bench.consume`'s ``aiokafka`` variant) and producing
the outputs (``scorer.kafka.send_batched`` of each micro-batch's alerts and score records,
its acknowledgements awaited before the next). This process scores the stream once, with
this tree, so both sides send the very same output bytes; the inputs are preloaded once.
Each side runs in a fresh child (``python -P``, its tree first on ``PYTHONPATH``, its own
``scorer/native`` built from its own sources), the sides alternate round by round, and each
child reports its process CPU time per input event from the end of its first batch on (the
connection, metadata and first batch left out). The broker's own CPU is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from scorer.bench.abtrees import build_native
from scorer.bench.harness import drop_topics
from scorer.bench.realistic import add_stream_arguments
from scorer.config import KafkaSettings, Settings
from scorer.events.structs import EventKind
from scorer.kafka import TopicSpec, ensure_topics

_HERE = Path(__file__).resolve()
EDGES = ("consume", "produce")


async def _produce(bootstrap: str, data: Path) -> dict[str, float]:
    """Child: send every batch of outputs in ``data`` (and await its acks) with this tree's code."""
    from scorer.kafka import make_producer, send_batched
    from scorer.pipeline.records import OutputRecord

    stored = msgspec.msgpack.decode(data.read_bytes())
    batches = [[OutputRecord(t, v, k) for t, k, v in rows] for rows in stored["batches"]]
    producer = make_producer(KafkaSettings(bootstrap_servers=bootstrap))
    await producer.start()
    try:
        start: tuple[float, float] | None = None
        for batch in batches:
            await asyncio.gather(*await send_batched(producer, batch))
            if start is None:
                start = time.process_time(), time.perf_counter()
    finally:
        await producer.stop()
    assert start is not None
    cpu, wall = time.process_time() - start[0], time.perf_counter() - start[1]
    events = stored["batch"] * (len(batches) - 1)
    megabytes = sum(len(v) for rows in stored["batches"][1:] for _, _, v in rows) / 1e6
    return {"events": events, "cpu_us_per_event": cpu / events * 1e6, "wall_us_per_event": wall / events * 1e6,
            "cpu_ms_per_mb": cpu / megabytes * 1e3}


def _child(args: argparse.Namespace) -> dict[str, Any]:
    if args.child == "produce":
        return asyncio.run(_produce(args.bootstrap, Path(args.data)))
    from scorer.bench.consume import _aiokafka  # in the tree under test: a name every tree has

    topics = {t: EventKind(k) for t, k in json.loads(args.topics).items()}
    n, cpu, wall = asyncio.run(_aiokafka(args.bootstrap, topics, args.partitions, args.events, False, False))
    return {"events": n, "cpu_us_per_event": cpu / n * 1e6, "wall_us_per_event": wall / n * 1e6}


async def _prepare(args: argparse.Namespace, data: Path) -> tuple[dict[str, str], str]:
    """The inputs preloaded into fresh topics; the outputs of scoring them (this tree) in ``data``.
    Returns the input topics (name -> kind) and the run's output topic (drop_topics')."""
    # Here, not at the top: a child imports this file with another tree's scorer package.
    from scorer.bench.consume import preload
    from scorer.pipeline.records import InputRecord
    from scorer.pipeline.sink import score_records
    from scorer.service.build import build_scorer

    items, topics, out = await preload(args)
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))  # type: ignore[arg-type]
    encoder = msgspec.json.Encoder()
    batches = []
    for i in range(0, len(items), args.batch):
        records = [InputRecord(kind, value, key, topics[kind], 0, i + j)
                   for j, (kind, key, value) in enumerate(items[i:i + args.batch])]
        outcome = await scorer.score(records)
        outputs = outcome.alerts + outcome.dead_letters + score_records(f"{out}.scores", outcome.scores, encoder)
        # Every output to the run's own topics (same names on both sides, deleted at the end).
        batches.append([(f"{out}.{r.topic}", r.key, r.value) for r in outputs])
    names = sorted({t for rows in batches for t, _, _ in rows})
    await ensure_topics(KafkaSettings(bootstrap_servers=args.bootstrap), [TopicSpec(t, args.partitions) for t in names])
    data.write_bytes(msgspec.msgpack.encode({"batch": args.batch, "batches": batches}))
    return {t: k.value for k, t in topics.items()}, out


def _run(tree: Path, edge: str, args: argparse.Namespace, data: Path, topics: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-P", str(_HERE), "--child", edge, "--data", str(data), "--topics", topics,
           "--bootstrap", args.bootstrap, "--events", str(args.events), "--partitions", str(args.partitions)]
    done = subprocess.run(cmd, env=env, cwd=tree, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-tree", type=Path, required=False, help="source tree of the code before")
    parser.add_argument("--after-tree", type=Path, default=_HERE.parents[2], help="default: this tree")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--events", type=int, default=120_000)
    parser.add_argument("--batch", type=int, default=2048, help="input events a batch of outputs is of")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--child", choices=EDGES, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--topics", help=argparse.SUPPRESS)
    add_stream_arguments(parser)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args)))
        return
    if args.before_tree is None:
        parser.error("--before-tree is required")
    sides = {"before": args.before_tree.resolve(), "after": args.after_tree.resolve()}
    for tree in sides.values():
        build_native(tree)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {e: {s: [] for s in sides} for e in EDGES}
    with tempfile.TemporaryDirectory(prefix="edges-ab-") as tmp:
        data = Path(tmp) / "outputs.msgpack"
        preloaded, out = asyncio.run(_prepare(args, data))
        try:
            for r in range(args.rounds):
                for edge in EDGES:
                    for side, tree in (sides.items() if r % 2 == 0 else reversed(sides.items())):
                        row = _run(tree, edge, args, data, json.dumps(preloaded))
                        results[edge][side].append(row)
                        print(f"round {r} {edge:>7} {side:>6}: " + "  ".join(
                            f"{k} {v:,.2f}" for k, v in row.items() if k != "events"), flush=True)
        finally:
            asyncio.run(drop_topics(args.bootstrap, out))
    summary: dict[str, float] = {}
    for edge in EDGES:
        for side in sides:
            summary[f"{edge}/{side}/cpu_us_per_event"] = round(statistics.median(
                row["cpu_us_per_event"] for row in results[edge][side]), 3)
        summary[f"{edge}/after_vs_before"] = round(
            summary[f"{edge}/after/cpu_us_per_event"] / summary[f"{edge}/before/cpu_us_per_event"], 3)
    print(json.dumps(summary, indent=2))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"stream": args.stream, "events": args.events, "batch": args.batch, "sides": {
                k: str(v) for k, v in sides.items()}, "results": results, "summary": summary}, fh, indent=2)


if __name__ == "__main__":
    main()
