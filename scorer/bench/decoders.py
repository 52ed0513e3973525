"""Candidates for decoding a micro-batch's values, side by side on the same bytes.

    python -m scorer.bench.decoders --stream capture --stream realistic --batch 2048

Per kind, CPU µs per record (process time: the machine is shared) of:

- ``per-record``: :class:`scorer.events.decode.EventDecoder`, one call per record (the
  path before columnar decoding, still the one refused records take);
- ``columnar``: :func:`scorer.events.columnar.decode_rows`, the scorer's path (flows as
  views, checks by column);
- ``msgspec-dict``: msgspec into plain dicts, one call per record (no checks: a floor for
  anything that builds Python objects per record);
- ``arrow-json``: ``pyarrow.json.read_json`` over the batch's newline-joined bytes, into
  Arrow columns (no Python object per record; schema inferred per batch, no per-record
  refusal: a bad record fails the whole batch). Skipped when pyarrow is not installed (the
  scorer does not depend on it).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import msgspec

from scorer.bench.loadgen import payloads, templates
from scorer.bench.realistic import add_stream_arguments, stream_templates
from scorer.demo import bundled_capture
from scorer.events.columnar import decode_rows
from scorer.events.decode import EventDecoder
from scorer.events.structs import EventKind, SourceRef

Candidate = Callable[[EventKind, list[bytes]], Any]


def _per_record(kind: EventKind, values: list[bytes]) -> Any:
    decode, ref = EventDecoder().decode, SourceRef("bench", 0, 0)
    return [decode(kind, v, ref) for v in values]


def _columnar(kind: EventKind, values: list[bytes]) -> Any:
    return decode_rows(kind, values, 1 << 20, views=True)


_DICTS = msgspec.json.Decoder()


def _msgspec_dict(kind: EventKind, values: list[bytes]) -> Any:
    return list(map(_DICTS.decode, values))


def _arrow(kind: EventKind, values: list[bytes]) -> Any:
    import io

    from pyarrow import json as pa_json

    # One thread: CPU time is what is compared (its thread pool would hide from thread time).
    return pa_json.read_json(io.BytesIO(b"\n".join(values)), read_options=pa_json.ReadOptions(use_threads=False))


CANDIDATES: dict[str, Candidate] = {
    "per-record": _per_record, "columnar": _columnar, "msgspec-dict": _msgspec_dict, "arrow-json": _arrow,
}


def measure(values: dict[EventKind, list[bytes]], batch: int, rounds: int) -> dict[str, dict[str, float]]:
    """CPU µs per record of every available candidate, per kind (best of ``rounds``)."""
    out: dict[str, dict[str, float]] = {}
    for name, fn in CANDIDATES.items():
        try:
            fn(EventKind.SIEM, values[EventKind.SIEM][:8])
        except ImportError:
            print(f"{name}: not installed, skipped")
            continue
        row = out[name] = {}
        for kind, vals in values.items():
            best = float("inf")
            for _ in range(rounds):
                t0 = time.process_time()
                for i in range(0, len(vals), batch):
                    fn(kind, vals[i:i + batch])
                best = min(best, time.process_time() - t0)
            row[kind.value] = round(best / len(vals) * 1e6, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000, help="events per stream (default: 30000)")
    parser.add_argument("--batch", type=int, default=2048, help="records per micro-batch (default: 2048)")
    parser.add_argument("--rounds", type=int, default=3, help="repeats; the best is kept (default: 3)")
    parser.add_argument("--out", help="write the results as JSON here (default: print only)")
    add_stream_arguments(parser)
    args = parser.parse_args()
    tpl = stream_templates(args, templates(bundled_capture(), tuple(EventKind)))
    values: dict[EventKind, list[bytes]] = {k: [] for k in EventKind}
    for kind, _, value in payloads(tpl, args.events):
        values[kind].append(value)
    results = measure(values, args.batch, args.rounds)
    for name, row in results.items():
        print(f"{args.stream:9s} {name:13s} " + "  ".join(f"{k} {v:6.2f}" for k, v in row.items()) + "  (µs/record)")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"stream": args.stream, "batch": args.batch, "us_per_record": results}, fh, indent=2)


if __name__ == "__main__":
    main()
