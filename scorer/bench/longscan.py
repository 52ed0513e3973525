"""The long-value scanners' cost: at pack load, or in the first batch that brings long values.

    python -m scorer.bench.longscan --before-tree /tmp/base [--rounds 3] [--out FILE.json]

Each side loads the shipped pack as the service does (``RuleStage.load``) in a fresh child
process (``python -P``, its tree first on ``PYTHONPATH``), then evaluates two batches of the
pack's golden events (238) with every ``EventData`` string made longer than
:data:`~scorer.rules.matchers.LONG_VALUE` (600 characters more), in batches of 50: the first
pass is the first to bring long values, the second brings new ones (the same events, a filler
one character longer), so a batch's ``first - second`` is what it paid for building scanners. Sides, in
turn each round: ``before`` (the tree given), ``after, cold cache`` (this tree, an empty
``XDG_CACHE_HOME``: the first load on a host) and ``after, warm cache``. The before side then
builds every scanner it did not need yet, timed one by one: the stall each field's first long
value would cost. The hits of both batches must be the same on every side (a digest). Last,
a fresh engine takes the realistic stream's EDR background (shared data) in 50-event batches:
the batches over 5 ms of CPU are listed (first sight of a long value, or of new text by RE2).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve()
PACK = ("rule_repository", "sigma_windows", "3")
BATCH = 50  # events per batch: the service's micro-batches at 10,000 events/s are about this size
REALISTIC_EVENTS = 5000
SLOW_MS = 5.0  # a realistic batch over this much CPU is listed


def _longer(event: Any, filler: str, keys: set[str] | None = None) -> Any:
    """``event`` (a golden entry's raw event) with its EventData strings (of ``keys``; None:
    all) ``filler`` longer."""
    data = event.get("Event", {}).get("EventData")
    if isinstance(data, dict):
        data = {k: v + filler if isinstance(v, str) and (keys is None or k in keys) else v for k, v in data.items()}
        event = {**event, "Event": {**event["Event"], "EventData": data}}
    return event


def _long_event(event: Any, filler: str) -> Any:
    """The decoded event with every EventData string the decoder keeps as text made longer (a
    timestamp or a number with text after it is refused or dropped by the decoder: left as it
    is)."""
    from scorer.errors import RecordError
    from scorer.events import edr

    keys = set()
    for key, value in (event.get("Event", {}).get("EventData") or {}).items():
        if not isinstance(value, str):
            continue
        try:
            decoded = edr.from_mapping(_longer(event, filler, {key}))
        except RecordError:
            continue
        texts = [*decoded.fields.values(), *(getattr(decoded, f) for f in decoded.__struct_fields__)]
        if value + filler in texts:
            keys.add(key)
    return edr.from_mapping(_longer(event, filler, keys))


def _child() -> dict[str, Any]:
    """Runs in the tree under test: only APIs both trees have."""
    from scorer.rules.annotate import RuleStage
    from scorer.rules.matchers import LONG_VALUE
    from scorer.rules.pack import read_golden

    root = Path.cwd()
    t0, c0 = time.perf_counter(), time.process_time()
    engine = RuleStage.load(root / PACK[0], PACK[1], PACK[2]).engine
    out: dict[str, Any] = {"load_s": time.perf_counter() - t0, "load_cpu_s": time.process_time() - c0}
    matchers = [*engine.matchers.values(), *engine.keyword_groups.values()]
    scannable = [m for m in matchers if m.substr is not None and m.long_ok]
    out["scannable"] = len(scannable)
    out["built_at_load"] = sum(m.long is not None for m in scannable)
    golden = [g["event"] for g in read_golden(root.joinpath(*PACK))]
    digest = hashlib.sha256()
    # The second pass's values are one character longer: new to the engine's result cache, but
    # no new text to the RE2 sets' lazily built DFAs (whose first sight of text costs ms too).
    for name, extra in (("first", 0), ("second", 1)):
        events = [_long_event(e, " " + "z" * (LONG_VALUE + 88 + extra)) for e in golden]
        times: list[float] = []
        cpu: list[float] = []
        for start in range(0, len(events), BATCH):
            t0, c0 = time.perf_counter(), time.thread_time()
            hits = engine.evaluate(events[start:start + BATCH]).hits
            times.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.thread_time() - c0) * 1e3)
            digest.update(repr(hits).encode())
        out[f"{name}_batches_ms"] = times
        out[f"{name}_batches_cpu_ms"] = cpu
        out[f"built_after_{name}"] = sum(m.long is not None for m in scannable)
    out["events"] = len(golden)
    out["hits_digest"] = digest.hexdigest()[:16]
    out["realistic_batches_cpu_ms"] = _realistic(root)
    lazy = getattr(scannable[0], "_long", None) if scannable else None
    if lazy is not None:  # the before tree: each remaining field's first long value, one by one
        builds = []
        for m in scannable:
            if m.long is None:
                c0 = time.process_time()
                lazy_of = getattr(m, "_long")  # noqa: B009 - the before tree's lazy build
                lazy_of("z" * 600, [])
                builds.append((time.process_time() - c0) * 1e3)
        out["remaining_builds_ms"] = builds
    return out


def _realistic(root: Path) -> list[float]:
    """A fresh engine's CPU ms per 50-event batch over the realistic stream's EDR background
    (:mod:`scorer.bench.realistic`, 5,000 events: values repeat, a few are long)."""
    from scorer.bench.realistic import background
    from scorer.config import data_dir
    from scorer.events.structs import EndpointEvent, EventKind
    from scorer.rules.annotate import RuleStage

    events = [e for e in background(data_dir(), EventKind.EDR, REALISTIC_EVENTS) if isinstance(e, EndpointEvent)]
    engine = RuleStage.load(root / PACK[0], PACK[1], PACK[2]).engine
    cpu = []
    for start in range(0, len(events), BATCH):
        c0 = time.thread_time()
        engine.evaluate(events[start:start + BATCH])
        cpu.append((time.thread_time() - c0) * 1e3)
    return cpu


def _run(tree: Path, cache: Path) -> dict[str, Any]:
    from scorer.config import data_dir

    env = {**os.environ, "PYTHONPATH": str(tree), "XDG_CACHE_HOME": str(cache), "SCORER_DATA_DIR": str(data_dir())}
    done = subprocess.run([sys.executable, "-P", str(_HERE), "--child"], env=env, cwd=tree, check=True,
                          capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def bench(before: Path, after: Path, rounds: int) -> dict[str, Any]:
    sides: dict[str, list[dict[str, Any]]] = {"before": [], "after, cold cache": [], "after, warm cache": []}
    with tempfile.TemporaryDirectory(prefix="longscan-") as tmp:
        warm = Path(tmp) / "warm"
        _run(after, warm)  # fills the warm cache (not counted)
        for i in range(rounds):
            sides["before"].append(_run(before, Path(tmp) / f"before-{i}"))
            sides["after, cold cache"].append(_run(after, Path(tmp) / f"cold-{i}"))
            sides["after, warm cache"].append(_run(after, warm))
    digests = {r["hits_digest"] for runs in sides.values() for r in runs}
    return {"rounds": rounds, "sides": sides, "same_hits": len(digests) == 1}


def format_report(report: dict[str, Any], unit: str = "CPU ms") -> str:
    """The medians of the rounds; ``unit``: "CPU ms" (the evaluating thread's) or "ms" (wall)."""
    lines = [f"side | load s (CPU s) | first pass, {unit} per 50-event batch | second pass | "
             "worst first - second | scanners at load / after the passes (of N)"]
    key = "batches_cpu_ms" if unit == "CPU ms" else "batches_ms"
    for side, runs in report["sides"].items():
        r0 = runs[0]
        first = [statistics.median(b) for b in zip(*(r[f"first_{key}"] for r in runs), strict=True)]
        second = [statistics.median(b) for b in zip(*(r[f"second_{key}"] for r in runs), strict=True)]
        worst = statistics.median(max(a - b for a, b in zip(r[f"first_{key}"], r[f"second_{key}"], strict=True))
                                  for r in runs)
        lines.append(f"{side} | {_median(runs, 'load_s'):.3f} ({_median(runs, 'load_cpu_s'):.3f}) | "
                     + " / ".join(f"{t:.1f}" for t in first) + " | " + " / ".join(f"{t:.1f}" for t in second)
                     + f" | {worst:.1f} | {r0['built_at_load']} / {r0['built_after_second']} (of {r0['scannable']})")
    before = report["sides"]["before"]
    builds = sorted(b for r in before for b in r.get("remaining_builds_ms", []))
    if builds:
        per_run = statistics.median(sum(r["remaining_builds_ms"]) for r in before)
        lines.append(f"before: each other field's first long value stalls {builds[0]:.1f}-{builds[-1]:.1f} ms "
                     f"(median {statistics.median(builds):.1f}); these fields' builds: {per_run:.0f} ms of CPU a run")
    lines.append(f"events: {before[0]['events']}; same hits on every side: {report['same_hits']}")
    lines.append(f"realistic EDR background, a fresh engine, {BATCH}-event batches over {SLOW_MS:.0f} ms of CPU "
                 "(batch: ms), each run:")
    for side, runs in report["sides"].items():
        slow = ["  ".join(f"{i}: {t:.1f}" for i, t in enumerate(r["realistic_batches_cpu_ms"]) if t > SLOW_MS)
                for r in runs]
        lines.append(f"  {side}: " + " | ".join(slow))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--before-tree", type=Path, help="a checkout of the code to compare with")
    p.add_argument("--after-tree", type=Path, default=_HERE.parents[2], help="default: this tree")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_child()))
        return 0
    if args.before_tree is None:
        p.error("--before-tree is required")
    report = bench(args.before_tree.resolve(), args.after_tree.resolve(), args.rounds)
    print(format_report(report))
    print("\n".join(format_report(report, "ms").splitlines()[:4]))  # the same table in wall time
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if report["same_hits"] else 1


if __name__ == "__main__":
    sys.exit(main())
