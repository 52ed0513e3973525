"""The rule engine alone on the EDR batches the pipeline hands it (benchmarks.md section 27).

    # the batches: the service's BatchScorer over a stream, after a warm-up, each EDR list saved
    SCORER_DATA_DIR=../shared/data python docs/results/s13/hr-engine-batches.py capture \
        --stream realistic --batch 50 --out /tmp/real50.pkl
    # one warm pass, then one pass inside functools.reduce, which callgrind counts alone:
    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce \
        python -P docs/results/s13/hr-engine-batches.py loop /tmp/real50.pkl     # (cwd: the tree)
    # or CPU per batch, best of 7 passes:
    python -P docs/results/s13/hr-engine-batches.py time /tmp/real50.pkl
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import pickle
import time
from pathlib import Path
from typing import Any

from scorer.rules.annotate import RuleStage, annotate
from scorer.rules.engine import RuleEngine


def capture(args: argparse.Namespace) -> None:
    os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "compiled")
    from scorer.bench import stages
    from scorer.bench.realistic import add_stream_arguments
    from scorer.config import Settings
    from scorer.service.build import build_scorer

    parser = argparse.ArgumentParser()
    add_stream_arguments(parser)
    stream = parser.parse_args(["--stream", args.stream])
    got: list[list[Any]] = []

    async def run() -> None:
        scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))  # type: ignore[arg-type]
        records = stages._records(args.warm + args.events, stream)
        await stages.measure(scorer, [records[:args.warm]], 512)
        evaluate = RuleEngine.evaluate

        def keep(self: RuleEngine, events: Any) -> Any:
            got.append(list(events))
            return evaluate(self, events)

        RuleEngine.evaluate = keep  # type: ignore[method-assign]
        await stages.measure(scorer, [records[args.warm:]], args.batch)
        RuleEngine.evaluate = evaluate  # type: ignore[method-assign]

    asyncio.run(run())
    Path(args.out).write_bytes(pickle.dumps(got))
    print(f"{len(got)} batches, {sum(map(len, got)) / max(len(got), 1):.1f} EDR events each")


def engine_and_batches(path: str) -> tuple[RuleEngine, list[list[Any]]]:
    engine = RuleStage.load(Path("rule_repository"), "sigma_windows").engine
    batches: list[list[Any]] = pickle.loads(Path(path).read_bytes())
    for batch in batches:  # warm: every value matched once, as in a steady stream
        annotate(engine, batch)
    return engine, batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["capture", "loop", "time"])
    parser.add_argument("path", nargs="?")
    parser.add_argument("--stream", default="realistic")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--warm", type=int, default=16000)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.mode == "capture":
        capture(args)
        return
    engine, batches = engine_and_batches(args.path)
    if args.mode == "loop":
        functools.reduce(lambda _, batch: annotate(engine, batch), batches, None)
        return
    best = float("inf")
    for _ in range(7):
        t0 = time.process_time()
        for batch in batches:
            annotate(engine, batch)
        best = min(best, time.process_time() - t0)
    print(f"{best / len(batches) * 1e6:.1f} us per batch")


if __name__ == "__main__":
    main()
