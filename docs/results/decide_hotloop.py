"""decide() replayed on the batches a capture run fed it, per kind (benchmarks.md sections 25, 28).

    PYTHONPATH=<tree> .venv/bin/python -P docs/results/decide_hotloop.py [BATCH] [REPEATS]
    PYTHONPATH=<tree> valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce \\
        python -P docs/results/decide_hotloop.py BATCH 0 --warm 2000 --events 6000 --replays R [--kind edr]

The service's BatchScorer scores the bundled capture (16,000 events of warm-up, then 24,000 in
BATCH-record batches, 2,048 by default) with ``decide`` recorded; the recorded calls are then
replayed, all kinds and each kind alone, and the best of REPEATS (5) is printed as thread CPU
per event and per alert. Run it with each tree first on PYTHONPATH (``-P``: not this file's
folder) to compare two trees on one machine. ``--replays R`` replays the calls R times more
after the timing, inside one ``functools.reduce`` call: callgrind told to count only inside
``functools_reduce`` counts those replays alone (the scoring before them moves by hundreds of
millions of instructions between identical runs; this does not, nor with the machine's load).
The hosts' risk state carries over from one replay to the next on both trees alike.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
from typing import Any

import scorer.pipeline.scoring as scoring
from scorer.bench.stages import _records
from scorer.config import Settings
from scorer.pipeline import decide as decide_module
from scorer.service.build import build_scorer


async def _recorded(batch: int, warm: int = 16000, events: int = 24000) -> list[tuple[Any, ...]]:
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))  # type: ignore[arg-type]
    records = _records(warm + events)
    for i in range(0, warm, 512):
        await scorer.score(records[i : i + 512])
    calls: list[tuple[Any, ...]] = []
    real = scoring.decide  # type: ignore[attr-defined]

    def recording(*args: Any) -> Any:
        calls.append(args)
        return real(*args)

    scoring.decide = recording  # type: ignore[attr-defined,assignment]
    for i in range(warm, warm + events, batch):
        await scorer.score(records[i : i + batch])
    scoring.decide = real  # type: ignore[attr-defined]
    return calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("batch", type=int, nargs="?", default=2048)
    parser.add_argument("repeats", type=int, nargs="?", default=5)
    parser.add_argument("--warm", type=int, default=16000)
    parser.add_argument("--events", type=int, default=24000)
    parser.add_argument("--replays", type=int, default=0, help="untimed replays after the timing (valgrind)")
    parser.add_argument("--kind", default=None, help="the untimed replays of this kind only")
    args = parser.parse_args()
    calls = asyncio.run(_recorded(args.batch, args.warm, args.events))
    events = sum(len(call[0].records) for call in calls)

    def run(kind: str | None) -> tuple[float, int]:
        alerts, t0 = 0, time.thread_time()
        for b, results, prefix, collect in calls:
            chosen = results if kind is None else {k: v for k, v in results.items() if k.value == kind}
            alerts += len(decide_module.decide(b, chosen, prefix, collect).alerts)
        return time.thread_time() - t0, alerts

    run(None)
    run(None)
    for kind in (None, "netflow", "siem", "edr") if args.repeats else ():
        best = min(run(kind)[0] for _ in range(args.repeats))
        alerts = run(kind)[1]
        print(f"{kind or 'all':8s} alerts {alerts:5d}  {best / events * 1e6:6.2f} us/event  "
              f"{best / max(alerts, 1) * 1e6:6.2f} us/alert", flush=True)
    # The replays inside one C call (functools_reduce) that callgrind can count alone.
    alerts = functools.reduce(lambda total, _: total + run(args.kind)[1], range(args.replays), 0)
    if args.replays:
        print(f"replays {args.replays} kind {args.kind or 'all'} events {events} alerts per replay "
              f"{alerts // args.replays}", flush=True)


if __name__ == "__main__":
    main()
