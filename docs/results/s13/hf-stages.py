"""Decode and features, alone, on the very batches the pipeline hands them (benchmarks.md section 26).

    python docs/results/s13/hf-stages.py collect --stream realistic --batch 50 --out B.pkl   # one tree
    PYTHONPATH=<tree> python -P docs/results/s13/hf-stages.py count B.pkl 120                # under callgrind
    PYTHONPATH=<tree> python -P docs/results/s13/hf-stages.py digest B.pkl                   # matrices' sha256

``collect`` scores the stream with the service's BatchScorer (compiled trees) in micro-batches of
``--batch`` after a ``--warm`` warm-up and keeps each kind's events as ``compute_features`` got them,
and the records. ``count`` builds the feature sets directly (no models or rule pack, so valgrind's
start-up stays short; the same on both trees), runs ``compute_features`` over N of those batches and
``decode`` over the records of N/3 micro-batches once outside the count, then over the next ones
inside one ``functools.reduce`` call each: run it under

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce \
        --dump-after=functools_reduce --callgrind-out-file=OUT python -P ... count B.pkl 120

and OUT.1 / OUT.2 hold the instructions of the features and of the decode pass alone (their
``summary:`` line), divided by the events it prints. ``digest`` prints a digest of every matrix of
the collected batches (fresh feature sets of the service, in order): equal on two trees = the same bytes.
``pipeline B.pkl WARM N`` scores the records with the service's BatchScorer and, after WARM of them,
runs each ``compute_features`` call of the next N inside ``functools.reduce`` (the features stage as
the pipeline runs it, between rules, inference and decide), then the next N's feature batches back to
back, with a ``math.gamma`` call between: under callgrind with ``--dump-before=math_gamma`` too,
OUT.1 holds the in-pipeline count and OUT the back-to-back one.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import os
import pickle
import sys
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "compiled")


def _records(items: list[tuple[str, bytes | None, bytes]]) -> list[Any]:
    from scorer.events.structs import EventKind
    from scorer.pipeline.source import input_record

    return [input_record(EventKind(k), v, key, f"events.{k}", 0, i) for i, (k, key, v) in enumerate(items)]


def _scorer() -> Any:
    from scorer.config import Settings
    from scorer.service.build import build_scorer

    return build_scorer(Settings(inference={"backend": "onnxruntime"}))  # type: ignore[arg-type]


def collect(args: argparse.Namespace) -> None:
    import scorer.pipeline.scoring as scoring
    from scorer.bench.loadgen import payloads, templates
    from scorer.bench.realistic import stream_templates
    from scorer.demo import bundled_capture
    from scorer.events.structs import EventKind

    tpl = stream_templates(args, templates(bundled_capture(), tuple(EventKind)))
    items = [(k.value, key, v) for k, key, v in payloads(tpl, args.warm + args.events)]
    records, scorer = _records(items), _scorer()

    async def run(part: list[Any]) -> None:
        for i in range(0, len(part), args.batch):
            await scorer.score(part[i:i + args.batch])

    asyncio.run(run(records[:args.warm]))
    batches: list[tuple[str, list[Any]]] = []
    original = scoring.compute_features

    def keep(runtime: Any, kept: list[Any], batch: Any) -> Any:
        batches.append((runtime.kind.value, [ev for ev, _ in kept]))
        return original(runtime, kept, batch)

    scoring.compute_features = keep  # type: ignore[assignment]
    asyncio.run(run(records[args.warm:]))
    with open(args.out, "wb") as fh:
        pickle.dump({"batches": batches, "items": items, "warm": args.warm, "batch": args.batch}, fh)
    print(len(batches), "batches")


class _Failures:
    failures: list[Any] = []


def count(path: str, n: int) -> None:
    import scorer.pipeline.decode as decode
    from scorer.events.decode import EventDecoder
    from scorer.events.structs import EventKind
    from scorer.features import feature_set
    from scorer.pipeline.features import compute_features

    with open(path, "rb") as fh:
        d = pickle.load(fh)
    versions = {EventKind.NETFLOW: "", EventKind.EDR: "v3", EventKind.SIEM: ""}  # what the shipped models read
    runtimes: dict[Any, Any] = {k: SimpleNamespace(features=feature_set(k, v), kind=k) for k, v in versions.items()}
    records = _records(d["items"])[d["warm"]:]
    chunks = [records[i:i + d["batch"]] for i in range(0, len(records), d["batch"])]
    batches = [(runtimes[EventKind(k)], [(e, None) for e in evs]) for k, evs in d["batches"]]
    decoder = EventDecoder()

    def features(part: list[Any]) -> None:
        for runtime, items in part:
            compute_features(runtime, items, _Failures)  # type: ignore[arg-type]

    def decoded(part: list[Any]) -> None:
        for chunk in part:
            decode.decode(decoder, chunk, runtimes, {})

    features(batches[:n])  # outside the count: caches, automata, first-seen values
    decoded(chunks[:n // 3])
    functools.reduce(lambda _, __: features(batches[n:2 * n]), range(1), None)
    functools.reduce(lambda _, __: decoded(chunks[n // 3:2 * (n // 3)]), range(1), None)
    print("events", sum(len(items) for _, items in batches[n:2 * n]), sum(map(len, chunks[n // 3:2 * (n // 3)])),
          file=sys.stderr)


def digest(path: str) -> None:
    from scorer.events.structs import EventKind

    scorer = _scorer()
    with open(path, "rb") as fh:
        d = pickle.load(fh)
    h = hashlib.sha256()
    for kind, events in d["batches"]:
        x = scorer.runtimes[EventKind(kind)].features.transform(events)
        h.update(kind.encode() + str(x.shape).encode() + str(x.dtype).encode() + x.tobytes())
    print(os.path.basename(path), sum(len(e) for _, e in d["batches"]), "events", h.hexdigest()[:16])


def pipeline(path: str, warm: int, n: int) -> None:
    import math

    import scorer.pipeline.scoring as scoring

    with open(path, "rb") as fh:
        d = pickle.load(fh)
    records, scorer, size = _records(d["items"]), _scorer(), d["batch"]

    async def run(part: list[Any]) -> None:
        for i in range(0, len(part), size):
            await scorer.score(part[i:i + size])

    asyncio.run(run(records[:warm]))
    original = scoring.compute_features
    scoring.compute_features = lambda rt, items, batch: functools.reduce(  # type: ignore[assignment]
        lambda _, __: original(rt, items, batch), range(1), None)
    asyncio.run(run(records[warm:warm + n]))
    seen: list[tuple[Any, Any]] = []

    def keep(runtime: Any, items: Any, batch: Any) -> Any:
        seen.append((runtime, items))
        return original(runtime, items, batch)

    scoring.compute_features = keep  # type: ignore[assignment]
    asyncio.run(run(records[warm + n:warm + 2 * n]))  # not counted: outside reduce
    math.gamma(3.0)  # the dump between the two counts
    for runtime, items in seen:
        functools.reduce(lambda _, __, r=runtime, i=items: original(r, i, _Failures), range(1), None)  # type: ignore[misc]
    print("events", n, file=sys.stderr)


def main() -> None:
    from scorer.bench.realistic import add_stream_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--batch", type=int, default=50)
    c.add_argument("--events", type=int, default=6000)
    c.add_argument("--warm", type=int, default=16000)
    c.add_argument("--out", required=True)
    add_stream_arguments(c)
    k = sub.add_parser("count")
    k.add_argument("path")
    k.add_argument("batches", type=int)
    g = sub.add_parser("digest")
    g.add_argument("path")
    q = sub.add_parser("pipeline")
    q.add_argument("path")
    q.add_argument("warm", type=int)
    q.add_argument("n", type=int)
    args = parser.parse_args()
    if args.command == "collect":
        collect(args)
    elif args.command == "count":
        count(args.path, args.batches)
    elif args.command == "pipeline":
        pipeline(args.path, args.warm, args.n)
    else:
        digest(args.path)


if __name__ == "__main__":
    main()
