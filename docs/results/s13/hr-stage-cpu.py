"""Thread CPU of the rules stage (apply_rules) and of RuleEngine.evaluate in it, per event of all
kinds, in the service's BatchScorer (no broker), for the tree on PYTHONPATH (benchmarks.md section 27).

    cd TREE && SCORER_DATA_DIR=../shared/data PYTHONPATH=TREE \
        python -P docs/results/s13/hr-stage-cpu.py realistic 50 12000 16000

Thread CPU, unlike the stage timers (wall), does not count the time other processes hold the core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "compiled")

import scorer.pipeline.scoring as scoring
from scorer.bench import stages
from scorer.bench.realistic import add_stream_arguments
from scorer.config import Settings
from scorer.rules.engine import RuleEngine
from scorer.service.build import build_scorer
from scorer.service.gctune import tune_gc

SPENT = {"rules": 0.0, "engine": 0.0}


def main() -> None:
    stream, batch, events, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    parser = argparse.ArgumentParser()
    add_stream_arguments(parser)
    args = parser.parse_args(["--stream", stream])
    # (wrapped where scoring calls it)
    apply_rules, evaluate = scoring.apply_rules, RuleEngine.evaluate  # type: ignore[attr-defined]

    def rules_timed(*a: Any) -> Any:
        t0 = time.thread_time()
        out = apply_rules(*a)
        SPENT["rules"] += time.thread_time() - t0
        return out

    def engine_timed(self: RuleEngine, batch_events: Any) -> Any:
        t0 = time.thread_time()
        out = evaluate(self, batch_events)
        SPENT["engine"] += time.thread_time() - t0
        return out

    async def run() -> None:
        scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))  # type: ignore[arg-type]
        records = stages._records(warm + events, args)
        await stages.measure(scorer, [records[:warm]], 512)
        tune_gc()
        scoring.apply_rules = rules_timed  # type: ignore[attr-defined,assignment]
        RuleEngine.evaluate = engine_timed  # type: ignore[assignment,method-assign]
        cpu0 = time.process_time()
        await stages.measure(scorer, [records[warm:]], batch)
        cpu = time.process_time() - cpu0
        print(f"rules {SPENT['rules'] / events * 1e6:.2f} engine {SPENT['engine'] / events * 1e6:.2f} "
              f"process {cpu / events * 1e6:.2f} us/event")

    asyncio.run(run())


if __name__ == "__main__":
    main()
