"""The score records' path alone, in one process: the reference (a ScoredEvent per row, then
msgspec's encode_lines, a split and a key encode per record: what the commit before wrote) against
scorer.native._findings.score_records from the kinds' columns, alternated on the same batches of
the realistic stream scored by the service's BatchScorer. Both must write the same records.

    .venv/bin/python docs/results/s16/hscore/records_ab.py --stream realistic --batch 2048 --rounds 7
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import msgspec

from scorer.bench.loadgen import payloads, templates
from scorer.bench.realistic import add_stream_arguments, stream_templates
from scorer.config import Settings
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind
from scorer.pipeline.outcome import ScoredEvents
from scorer.pipeline.sink import score_records
from scorer.pipeline.source import input_record
from scorer.service.build import build_scorer


def _batches(args: argparse.Namespace, n: int, batch: int) -> list[ScoredEvents]:
    tpl = stream_templates(args, templates(bundled_capture(), tuple(EventKind)))
    records = [input_record(k, v, key, f"events.{k.value}", 0, i) for i, (k, key, v) in enumerate(payloads(tpl, n))]
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))  # type: ignore[arg-type]

    async def run() -> list[ScoredEvents]:
        return [(await scorer.score(records[i : i + batch])).scores for i in range(0, n, batch)]  # type: ignore[misc]

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--events", type=int, default=20480)
    parser.add_argument("--rounds", type=int, default=7)
    add_stream_arguments(parser)
    args = parser.parse_args()
    batches = _batches(args, args.events, args.batch)
    encoder = msgspec.json.Encoder()

    def reference() -> list[object]:  # the structs are built here, as decide built them before
        return [score_records("scores", [e for k in s.kinds for e in k.events()], encoder) for s in batches]

    def native() -> list[object]:
        return [score_records("scores", s, encoder) for s in batches]

    assert reference() == native(), "the two paths wrote different records"
    n = sum(len(s) for s in batches)
    times: dict[str, list[float]] = {"reference": [], "native": []}
    for r in range(args.rounds):
        for name, path in (("reference", reference), ("native", native)):
            t0 = time.process_time()
            path()
            times[name].append((time.process_time() - t0) / n * 1e9)
        print(f"round {r + 1}: reference {times['reference'][-1]:.0f} ns/event, native {times['native'][-1]:.0f}")
    ref, nat = statistics.median(times["reference"]), statistics.median(times["native"])
    print(f"batch {args.batch}, {n} events: median reference {ref:.0f} ns/event, native {nat:.0f}, "
          f"native/reference {nat / ref:.2f}")


if __name__ == "__main__":
    main()
