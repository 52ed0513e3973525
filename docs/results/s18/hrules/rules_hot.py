"""The rules stage alone, hot: the realistic stream's EDR item lists as the pipeline hands them
to ``apply_rules`` at a batch size, timed again and again (best of R rounds), and a digest of
its outputs (hits, failures, rule_hits counts) to compare trees.

    python docs/results/s18/hrules/rules_hot.py --batch 50 --batch 2048 [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import os
import pstats
import sys
import time
from collections import defaultdict

os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "vectorized")
os.environ.setdefault("SCORER_DATA_DIR", "/work/shared/data")

import scorer.pipeline.scoring as scoring
from scorer.bench import stages
from scorer.config import Settings
from scorer.pipeline.batch import Batch
from scorer.pipeline.rules import apply_rules
from scorer.service.build import build_scorer


def capture(batch: int, events: int, warm: int) -> tuple[object, list[list]]:
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))  # type: ignore[arg-type]
    p = argparse.ArgumentParser()
    from scorer.bench.realistic import add_stream_arguments
    add_stream_arguments(p)
    sargs = p.parse_args(["--stream", "realistic"])
    records = stages._records(warm + events, sargs)
    seen: list[tuple[object, list]] = []
    real = scoring.apply_rules

    def spy(stage, items, b):
        seen.append((stage, list(items)))
        return real(stage, items, b)

    asyncio.run(stages.measure(scorer, [records[:warm]], 512))
    scoring.apply_rules = spy
    try:
        asyncio.run(stages.measure(scorer, [records[warm:]], batch))
    finally:
        scoring.apply_rules = real
    return seen[0][0], [items for _, items in seen]


def digest(stage, batches) -> str:
    h = hashlib.sha256()
    for items in batches:
        b = Batch.__new__(Batch)
        b.failures, b.rule_hits = [], defaultdict(int)
        kept = apply_rules(stage, items, b)
        for ev, _rec in kept:
            h.update(repr((ev.uid, ev.rule_hits)).encode())
        h.update(repr([(f.reason, f.detail) for f in b.failures] if b.failures else []).encode())
        h.update(repr(sorted(b.rule_hits.items())).encode())
    return h.hexdigest()[:16]


def run(stage, batches) -> float:
    t0 = time.perf_counter()
    for items in batches:
        b = Batch.__new__(Batch)
        b.failures, b.rule_hits = [], defaultdict(int)
        apply_rules(stage, items, b)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--warm", type=int, default=16000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--save", help="pickle each size's batches to SAVE.<size>.pickle (for rules_ir.py)")
    args = parser.parse_args()
    for size in args.batch or [50]:
        stage, batches = capture(size, args.events, args.warm)
        nev = sum(map(len, batches))
        if args.save:
            import pickle
            with open(f"{args.save}.{size}.pickle", "wb") as fh:
                pickle.dump(batches, fh)
        d = digest(stage, batches)
        times = [run(stage, batches) for _ in range(args.rounds)]
        best = min(times)
        print(f"batch {size}: {len(batches)} EDR batches, {nev} EDR events, digest {d}; "
              f"best {best / len(batches) * 1e6:.1f} us/batch, {best / (args.events) * 1e6:.3f} us per stream event "
              f"(median {sorted(times)[len(times) // 2] / len(batches) * 1e6:.1f})")
        if args.profile:
            pr = cProfile.Profile()
            pr.enable()
            run(stage, batches)
            pr.disable()
            pstats.Stats(pr, stream=sys.stdout).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
