"""Per-stage cost of the scoring path, in process (no broker): where the CPU goes per event.

    python -m scorer.bench.stages --batch 64 --batch 4096

Feeds the bundled capture through the service's own BatchScorer (in-process ONNX
Runtime) in micro-batches of each size, and prints µs per event for decode, features,
inference (sum of the calls; they overlap feature work), decide+OCSF, score records and
output partitioning, and the wall time of it all, per batch size. It is the
profile behind the pipe benchmark's numbers, without Kafka's share of the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections import defaultdict

import msgspec
import numpy as np
import numpy.typing as npt

from scorer.bench.loadgen import payloads, templates
from scorer.bench.realistic import add_stream_arguments, stream_templates
from scorer.config import Settings
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.kafka.partitioner import partitions_of
from scorer.pipeline.records import InputRecord
from scorer.pipeline.scoring import BatchScorer
from scorer.pipeline.sink import score_records
from scorer.pipeline.source import input_record
from scorer.service.build import build_scorer
from scorer.service.gctune import tune_gc


def _records(n: int, args: argparse.Namespace | None = None) -> list[InputRecord]:
    tpl = templates(bundled_capture(), tuple(EventKind))
    if args is not None:
        tpl = stream_templates(args, tpl)
    return [input_record(kind, value, key, f"events.{kind.value}", 0, i)
            for i, (kind, key, value) in enumerate(payloads(tpl, n))]


async def measure(scorer: BatchScorer, rounds: list[list[InputRecord]], batch: int,
                  evict: npt.NDArray[np.uint8] | None = None) -> dict[str, float]:
    """``evict``: a buffer written between batches, off the clocks: the caches as the pipeline
    finds them, where the broker and the load generator run between two batches."""
    totals: dict[str, float] = defaultdict(float)
    encoder = msgspec.json.Encoder()
    events = 0
    for records in rounds:
        for i in range(0, len(records), batch):
            chunk = records[i : i + batch]
            if evict is not None:
                evict += 1
            # CPU time of the process too: on a shared machine, wall time includes other work.
            cpu0, t_score = time.process_time(), time.perf_counter()
            outcome = await scorer.score(chunk)
            totals["wall"] += time.perf_counter() - t_score
            for stage, seconds in outcome.timings.items():
                totals[stage] += seconds
            t0 = time.perf_counter()
            written = score_records("scores", outcome.scores, encoder)  # the loop's own, scores topic on
            t1 = time.perf_counter()
            partitions_of([r.key for r in [*written, *outcome.alerts] if r.key is not None], 3)
            totals["score_records"] += t1 - t0
            totals["partitioning"] += time.perf_counter() - t1
            totals["wall"] += time.perf_counter() - t0
            totals["cpu"] += time.process_time() - cpu0
            events += len(chunk)
    # Stages overlap (inference runs beside the next kind's features): "wall" is the total.
    return {stage: round(seconds / events * 1e6, 2) for stage, seconds in totals.items()}


async def main_async(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    # ONNX Runtime unless SCORER_INFERENCE__IN_PROCESS_ENGINE says otherwise (the service's
    # default, auto, would be the compiled trees wherever tl2cgen is installed).
    os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "onnxruntime")
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))  # type: ignore[arg-type]
    # Every round scores records it has not seen (later in time, new uids): scoring the same
    # records again would put them in the entity windows twice (more alerts each round).
    warm = args.warm
    records = _records(warm + args.events * args.rounds * len(args.batch), args)
    await measure(scorer, [records[:warm]], 512)  # warm-up: sessions, caches, entity state
    tune_gc()  # as `scorer run` does once started
    backend = scorer.backend
    if isinstance(backend, OnnxRuntimeBackend):
        print("engines: " + ", ".join(f"{ref.name} {backend.engine_of(ref)}" for ref in backend.loaded()))
    results = {}
    for k, batch in enumerate(args.batch):
        start = warm + k * args.events * args.rounds
        rounds = [records[start + r * args.events : start + (r + 1) * args.events] for r in range(args.rounds)]
        evict = np.zeros(args.evict_mib << 20, np.uint8) if args.evict_mib else None
        results[str(batch)] = row = await measure(scorer, rounds, batch, evict)
        print(f"batch {batch:>5}: " + "  ".join(f"{k} {v:.1f}" for k, v in row.items()) + "  (µs/event)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, action="append", help="micro-batch size (repeatable)")
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warm", type=int, default=2000,
                        help="events scored before measuring (a template cycle, ~15,000, also fills the rule "
                             "engine's caches and builds its long-value scanners)")
    parser.add_argument("--evict-mib", type=int, default=0,
                        help="write a buffer of this many MiB between batches (off the clocks), as other processes "
                             "on the core do between the pipeline's batches (default: 0, none)")
    parser.add_argument("--out", help="write the results as JSON here")
    add_stream_arguments(parser)
    args = parser.parse_args()
    args.batch = args.batch or [64, 4096]
    results = asyncio.run(main_async(args))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
