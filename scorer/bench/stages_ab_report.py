"""What :mod:`scorer.bench.stages_ab` says of a run: the medians of both sides (process CPU
and each stage's timer, µs per event), the instruction counts under valgrind when taken, and
whether the outputs were identical; the run refused (exit 1) when a side's dead letters make
equal outputs prove nothing (:func:`scorer.bench.abtrees.dead_letter_guard`). ``--out`` gets
the same as JSON.

Apart from the runner because it reads only the children's results: it never runs in a tree
under test (the runner's own file does, as its child), so it may use what the tree before lacks.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any


def report(runs: dict[str, list[dict[str, Any]]], instructions: dict[str, Any], args: argparse.Namespace) -> None:
    before, after = runs["before"], runs["after"]
    digests = {r["digest"] for side in runs.values() for r in side}
    stages = sorted({s for side in runs.values() for r in side for s in r["stages_us"]})
    print(
        f"\n{args.stream} stream, {args.events} events per child, batch {args.batch[0]}, "
        f"{args.rounds} children per side; medians, µs per event"
    )
    print("| | before | after | after/before |\n|---|---:|---:|---:|")
    rows = [("CPU (process time)", [r["cpu_us"] for r in before], [r["cpu_us"] for r in after])]
    rows += [
        (
            f"{s} (stage timer)",
            [r["stages_us"].get(s, 0.0) for r in before],
            [r["stages_us"].get(s, 0.0) for r in after],
        )
        for s in stages
    ]
    for name, b, a in rows:
        mb, ma = statistics.median(b), statistics.median(a)
        print(f"| {name} | {mb:.2f} | {ma:.2f} | {ma / mb if mb else float('nan'):.2f} |")
    if instructions:
        ib, ia = instructions["before"], instructions["after"]
        print(f"| instructions per event (valgrind) | {ib:,.0f} | {ia:,.0f} | {ia / ib:.2f} |")
        wb, wa = instructions["before_whole_run"], instructions["after_whole_run"]
        print(f"| instructions, whole run (valgrind) | {wb:,.0f} | {wa:,.0f} | {wa / wb:.3f} |")
        sb = wb - instructions["before_whole_run_unsymbolised"]
        sa = wa - instructions["after_whole_run_unsymbolised"]
        print(f"| instructions, whole run, code with symbols | {sb:,.0f} | {sa:,.0f} | {sa / sb:.3f} |")
    from scorer.bench.abtrees import dead_letter_guard

    problems = dead_letter_guard(runs, args.max_dead_share)
    identical = len(digests) == 1 and not problems
    print(f"outputs (alerts, dead letters, score records) identical: {identical}")
    for problem in problems:
        print(f"REFUSED: {problem}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "runs": runs,
                    "instructions_per_event": instructions,
                    "identical_outputs": identical,
                    "refused": problems,
                },
                fh,
                indent=2,
            )
    if problems:
        raise SystemExit(1)
