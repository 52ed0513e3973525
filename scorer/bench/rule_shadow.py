"""What a candidate rule pack in shadow costs: the service's EDR scoring (decode, rules,
features, in-process inference, decide) on real OTRF events with and without a rule
shadow, in one run, on the same batches.

Two scorers built as the service builds them, both on production pack ``--production``;
the second also runs ``--candidate`` as its shadow (``scorer rules deploy --shadow``): a
second rule evaluation of every event, the candidate's rule-hit columns and a second
inference call per batch. The passes alternate (off, on, off, on, ...) so a machine busy
with other work weighs on both; per side the fastest pass counts. Printed: process CPU µs
per event, events per CPU-second, and the difference.

``python -m scorer.bench.rule_shadow [--events N] [--batch B] [--repeat R]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from scorer.bench.rules import DEFAULT_CAPTURES, raw_lines
from scorer.config import InferenceSettings, RuleSettings, Settings
from scorer.events.structs import EventKind
from scorer.lifecycle.rulepacks import with_rules
from scorer.pipeline.records import InputRecord
from scorer.pipeline.scoring import BatchScorer
from scorer.rules.annotate import RuleStage
from scorer.service.build import build_scorer

EDR = EventKind.EDR


def scorer(repository: Path, pack: str, production: str, candidate: str | None) -> BatchScorer:
    settings = Settings(kinds=(EDR,), inference=InferenceSettings(backend="onnxruntime"),
                        rules=RuleSettings(repository=repository, pack=pack, version=production))
    built = build_scorer(settings)
    built.collect_scores = False  # as the service without a scores topic
    if candidate is not None:
        live = built.runtimes[EDR]
        built.set_shadow(EDR, with_rules(live, RuleStage.load(repository, pack, candidate), live.features))
    return built


async def one_pass(target: BatchScorer, batches: list[list[InputRecord]]) -> tuple[float, int, int]:
    """CPU seconds, events scored, shadow comparisons made."""
    started, scored, compared = time.process_time(), 0, 0
    for records in batches:
        outcome = await target.score(records)
        scored += sum(outcome.scored.values())
        compared += sum(len(s.uids) for s in outcome.shadows)
    return time.process_time() - started, scored, compared


async def bench(repository: Path, pack: str, production: str, candidate: str, events: int, batch: int,
                repeat: int) -> dict[str, Any]:
    lines = raw_lines(DEFAULT_CAPTURES, events)
    records = [InputRecord(EDR, line, None, "bench", 0, i) for i, line in enumerate(lines)]
    batches = [records[i:i + batch] for i in range(0, len(records), batch)]
    sides = {"rule shadow off": scorer(repository, pack, production, None),
             "rule shadow on": scorer(repository, pack, production, candidate)}
    for target in sides.values():
        await target.backend.start()
        await one_pass(target, batches[:1])  # warm: sessions, matcher caches, the long-text scanners
    best: dict[str, tuple[float, int, int]] = {}
    for _ in range(repeat):
        for name, target in sides.items():
            cpu, scored, compared = await one_pass(target, batches)
            if name not in best or cpu < best[name][0]:
                best[name] = (cpu, scored, compared)
    us = {name: cpu / scored * 1e6 for name, (cpu, scored, _) in best.items()}
    rows = [{"side": name, "events": scored, "compared": compared, "cpu_us_per_event": round(us[name], 1),
             "events_per_cpu_s": round(scored / cpu)} for name, (cpu, scored, compared) in best.items()]
    return {"pack": pack, "production": production, "candidate": candidate, "events": len(lines), "batch": batch,
            "repeat": repeat, "rows": rows,
            "shadow_cpu_us_per_event": round(us["rule shadow on"] - us["rule shadow off"], 1)}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m scorer.bench.rule_shadow", description=__doc__.split("\n\n")[0])
    p.add_argument("--repository", type=Path, default=Path("rule_repository"))
    p.add_argument("--pack", default="sigma_windows")
    p.add_argument("--production", default="1")
    p.add_argument("--candidate", default="2")
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", type=Path, help="also write the report here")
    args = p.parse_args()
    report = asyncio.run(bench(args.repository, args.pack, args.production, args.candidate, args.events,
                               args.batch, args.repeat))
    for row in report["rows"]:
        print(f"{row['side']:16s}  {row['events']:>7,} events  {row['cpu_us_per_event']:>6} CPU us/event  "
              f"{row['events_per_cpu_s']:>7,} events/CPU-s  ({row['compared']:,} compared)")
    print(f"the rule shadow ({args.pack} {args.candidate} beside {args.production}): "
          f"+{report['shadow_cpu_us_per_event']} CPU us/event")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
