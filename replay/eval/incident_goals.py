"""Issue 14's goals on replayed scenarios, with the incident Policy chosen on other scenarios.

``python -m replay.eval.incident_goals REPLAY_DIR... [--out FILE]``: each REPLAY_DIR is a
``scorer replay`` output (truth.jsonl + alerts.jsonl) of one scenario. The scenarios are
split into two groups by position in name order (1st, 3rd, 5th... and 2nd, 4th, 6th...).
For each group, every Policy of the grid (quiet period x max span) is tried on that group
only, one is chosen, and it is reported on the *other* group: every scenario's numbers
come from a Policy that never saw it.

Choice on the tuning group, in this order: the most scenarios meeting all three goals,
then the shortest quiet period and span (the finest incidents that still meet them: a
longer window only merges more of a host's week into one incident), then the fewest
benign-only incidents per day.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from scorer.incidents import Policy

from .incidents import Prepared, correlate, prepare, read_findings, section
from .truth import read_truth

QUIET_S = (900.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 86_400.0)
MAX_SPAN_S = (86_400.0, 3 * 86_400.0, 7 * 86_400.0)


class Scenario:
    def __init__(self, directory: Path) -> None:
        self.name = directory.name
        self.truth = list(read_truth(directory / "truth.jsonl"))
        self.by_uid = {r.uid: r for r in self.truth}
        bad: Counter[str] = Counter()
        self.prepared: Prepared = prepare(read_findings(directory / "alerts.jsonl", bad), self.by_uid)
        self.prepared.unreadable = sum(bad.values())

    def measure(self, policy: Policy) -> dict[str, Any]:
        s = section(self.truth, correlate(self.prepared, self.by_uid, policy), policy)
        if len(s["captures"]) != 1:
            raise ValueError(f"{self.name}: a scenario's replay holds one capture, not "
                             f"{[c['capture'] for c in s['captures']]}")
        out = {k: v for k, v in s["captures"][0].items() if not k.startswith("_")}
        out["scenario"] = self.name
        out["met"] = bool(out["goal_ratio"] and out["goal_phases"] and out["goal_benign"])
        out["missed_phases"] = [p["phase"] for p in s["phases"] if p["alerts"] and not p["landed"]]
        out["create_delay_s"] = {p["phase"]: p["create_delay_s"] for p in s["phases"] if p["landed"]}
        out["record_delay_s"] = {p["phase"]: p["record_delay_s"] for p in s["phases"] if p["landed"]}
        return out


def _key(policy: Policy, results: list[dict[str, Any]]) -> tuple[float, ...]:
    met = sum(r["met"] for r in results)
    benign = sum(r["benign_only_per_day"] for r in results)
    return (-met, policy.quiet_s, policy.max_span_s, benign)


def choose(scenarios: list[Scenario], log: list[dict[str, Any]]) -> Policy:
    best: tuple[tuple[float, ...], Policy] | None = None
    for quiet, span in itertools.product(QUIET_S, MAX_SPAN_S):
        if span < quiet:
            continue
        policy = Policy(quiet_s=quiet, max_span_s=span)
        results = [s.measure(policy) for s in scenarios]
        log.append({"tuned_on": [s.name for s in scenarios], "quiet_s": quiet, "max_span_s": span,
                    "met": sum(r["met"] for r in results),
                    "alerts_per_incident": [r["alerts_per_incident"] for r in results],
                    "benign_only_per_day": [r["benign_only_per_day"] for r in results],
                    "phases_missed": sum(len(r["missed_phases"]) for r in results)})
        key = _key(policy, results)
        if best is None or key < best[0]:
            best = (key, policy)
    assert best is not None
    return best[1]


def run(directories: list[Path]) -> dict[str, Any]:
    ordered = sorted(directories, key=lambda d: d.name)
    groups = [ordered[0::2], ordered[1::2]]
    scenarios = {d.name: Scenario(d) for d in ordered}
    grid: list[dict[str, Any]] = []
    reported: list[dict[str, Any]] = []
    folds = []
    for tune, test in ((groups[0], groups[1]), (groups[1], groups[0])):
        policy = choose([scenarios[d.name] for d in tune], grid)
        folds.append({"tuned_on": [d.name for d in tune], "reported_on": [d.name for d in test],
                      "quiet_s": policy.quiet_s, "max_span_s": policy.max_span_s})
        for d in test:
            reported.append(scenarios[d.name].measure(policy) | {"policy": folds[-1]})
    default = [s.measure(Policy()) for s in scenarios.values()]
    return {"folds": folds, "reported": sorted(reported, key=lambda r: r["scenario"]),
            "default_policy": default, "grid": grid}


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| scenario | tuned on | quiet / span | alerts | incidents | alerts per incident | phases landed "
            "| benign-only / day | days | met |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        p = r.get("policy")
        policy = f"{p['quiet_s'] / 3600:g} h / {p['max_span_s'] / 86400:g} d" if p else "default"
        tuned = ", ".join(p["tuned_on"]) if p else "-"
        lines.append(f"| {r['scenario']} | {tuned} | {policy} | {r['alerts']:,} | {r['incidents']:,} | "
                     f"{r['alerts_per_incident']:,.0f} | {r['phases_landed']} of {r['phases_alerted']} | "
                     f"{r['benign_only_per_day']:g} | {r['days']:g} | {'yes' if r['met'] else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replay.eval.incident_goals", description=__doc__)
    parser.add_argument("replays", nargs="+", type=Path, help="scorer replay output folders, one per scenario")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    result = run(args.replays)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result["reported"]))
    print("\ndefault policy (quiet 1 h, span 1 d), for comparison:")
    print(table(result["default_policy"]))
    return 0 if all(r["met"] for r in result["reported"]) else 1


if __name__ == "__main__":
    sys.exit(main())

