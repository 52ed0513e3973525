"""Rule layer cost: every rule of a pack on real OTRF EDR events, rules on vs off, one run.

The events are the OTRF atomic captures' JSON lines (``../shared/data/edr/otrf-security-
datasets``), read raw (bytes) into memory first, then decoded by the service's own decoder
in micro-batches of ``--batch`` (4096, the service's default). Each mode runs over the same
events, ``--repeat`` times interleaved (a shared machine drifts), and the best pass counts:

* ``decode``: decoding only (rules off);
* ``decode+features``: decoding + the EDR feature transform (rules off);
* ``decode+rules``: decoding + :meth:`RuleEngine.evaluate` on every batch;
* ``decode+features+rules``: all three, what the service does per EDR batch.

Printed per mode: events/s (wall), CPU µs per event (process time), the process's peak RSS
after the mode (modes run in the order above, so growth is the later mode's), and for rules
the hits. ``python -m scorer.bench.rules`` or ``scorer bench --runners rules``.
"""

from __future__ import annotations

import argparse
import resource
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from scorer.events.decode import DecodeFailure, EventDecoder
from scorer.events.structs import EndpointEvent, EventKind, SourceRef
from scorer.rules import RuleEngine
from scorer.rules.build import DEFAULT_DATA

DEFAULT_CAPTURES = DEFAULT_DATA / "edr" / "otrf-security-datasets"
DEFAULT_PACK = Path("rule_repository") / "sigma_windows" / "1"
MODES = ("decode", "decode+features", "decode+rules", "decode+features+rules")


def raw_lines(root: Path, limit: int) -> list[bytes]:
    """Up to ``limit`` JSON lines from the OTRF zips under ``root`` (every capture in turn)."""
    out: list[bytes] = []
    for path in sorted(root.rglob("*.zip")):
        for line in _zip_lines(path):
            out.append(line)
            if len(out) >= limit:
                return out
    return out


def _zip_lines(path: Path) -> Iterator[bytes]:
    with zipfile.ZipFile(path) as archive:
        for member in sorted(archive.namelist()):
            if member.endswith((".json", ".jsonl", ".log")) and "__MACOSX" not in member:
                with archive.open(member) as fh:
                    yield from (line.strip() for line in fh if line.strip())


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _features() -> Callable[[Sequence[EndpointEvent]], Any]:
    from scorer.features.edr import EdrFeatures

    return EdrFeatures().transform


def run_mode(mode: str, lines: list[bytes], batch: int, engine: RuleEngine,
             features: Callable[[Sequence[EndpointEvent]], Any]) -> dict[str, Any]:
    decoder = EventDecoder()
    hits = events = failed = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(lines), batch):
        evs: list[EndpointEvent] = []
        for offset, value in enumerate(lines[start:start + batch], start):
            ev = decoder.decode(EventKind.EDR, value, SourceRef("bench", 0, offset))
            if isinstance(ev, DecodeFailure) or not isinstance(ev, EndpointEvent):
                failed += 1
            else:
                evs.append(ev)
        events += len(evs)
        if "features" in mode and evs:
            features(evs)
        if "rules" in mode:
            result = engine.evaluate(evs)
            hits += sum(1 for h in result.hits if h)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"mode": mode, "events": events, "decode_failures": failed, "events_per_s": round(events / wall),
            "cpu_us_per_event": round(cpu / max(events, 1) * 1e6, 1), "wall_s": round(wall, 2),
            "peak_rss_mb": _peak_rss_mb(), "events_with_hits": hits if "rules" in mode else None}


def bench(captures: Path, pack: Path, events: int, batch: int, repeat: int) -> dict[str, Any]:
    rss0 = _peak_rss_mb()
    lines = raw_lines(captures, events)
    rss_lines = _peak_rss_mb()
    t = time.perf_counter()
    engine = RuleEngine.load(pack)
    load_s = time.perf_counter() - t
    rss_engine = _peak_rss_mb()
    features = _features()
    best: dict[str, dict[str, Any]] = {}
    for _ in range(repeat):
        for mode in MODES:
            res = run_mode(mode, lines, batch, engine, features)
            if mode not in best or res["events_per_s"] > best[mode]["events_per_s"]:
                best[mode] = res
    return {"pack": str(pack), "rules": len(engine.rules), "atoms": len(engine.atoms), "batch": batch,
            "engine_load_s": round(load_s, 3), "rss_mb": {"start": rss0, "events_loaded": rss_lines,
                                                           "engine_loaded": rss_engine},
            "modes": [best[m] for m in MODES]}


def format_report(report: dict[str, Any]) -> str:
    rows = [f"rules: {report['rules']} ({report['atoms']} atoms), load {report['engine_load_s']} s, "
            f"batch {report['batch']}; peak RSS MB {report['rss_mb']}"]
    for m in report["modes"]:
        extra = f"  events with hits {m['events_with_hits']}" if m["events_with_hits"] is not None else ""
        rows.append(f"{m['mode']:24s} {m['events']:>8d} events {m['events_per_s']:>8d} events/s "
                    f"{m['cpu_us_per_event']:>7.1f} us/event cpu  peak rss {m['peak_rss_mb']} MB{extra}")
    by = {m["mode"]: m for m in report["modes"]}
    for off, on in (("decode", "decode+rules"), ("decode+features", "decode+features+rules")):
        rows.append(f"rules cost over {off}: {by[on]['cpu_us_per_event'] - by[off]['cpu_us_per_event']:.1f} "
                    f"us/event cpu")
    return "\n".join(rows)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--captures", type=Path, default=DEFAULT_CAPTURES, help="folder of OTRF zips")
    p.add_argument("--pack", type=Path, default=DEFAULT_PACK)
    p.add_argument("--rule-events", type=int, default=200_000, help="events to read (all captures, in order)")
    p.add_argument("--rule-batch", type=int, default=4096)
    p.add_argument("--rule-repeat", type=int, default=2)


def main(argv: list[str] | None = None) -> int:
    import json

    p = argparse.ArgumentParser(prog="python -m scorer.bench.rules", description=__doc__.splitlines()[0])
    add_arguments(p)
    p.add_argument("--out", type=Path, default=Path("out/bench-rules.json"))
    args = p.parse_args(argv)
    report = bench(args.captures, args.pack, args.rule_events, args.rule_batch, args.rule_repeat)
    print(format_report(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
