"""Decode and features alone, each on what the stage before it made (benchmarks.md section 33).

    PYTHONPATH=<tree> python -P docs/results/s14/hn-stages.py count --stream realistic --batch 2048 --events 6144
    PYTHONPATH=<tree> python -P docs/results/s14/hn-stages.py digest --stream realistic --batch 2048 --events 6144

Section 26's ``hf-stages.py`` counts features on events pickled by one tree; flows decoded into a
batch's columns (FlowRow) are not picklable and are what the features read now, so here each tree
decodes the records itself (``scorer.pipeline.decode.decode``, the service's feature sets: netflow
v1, EDR v3, SIEM v1) and ``compute_features`` reads that decode's batches, as the pipeline does.
The first ``--warm`` records (default 16,000: the realistic stream's templates once) go through
both stages outside the count (entity windows, caches), then the next ``--events`` are decoded
inside one ``functools.reduce`` call and featurised inside another: run ``count`` under

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce \
        --dump-after=functools_reduce --callgrind-out-file=OUT python -P ... count ...

and OUT.1 / OUT.2 hold the instructions of the decode pass and of the features pass alone (their
``summary:`` line); divide by the events ``count`` prints. ``digest`` prints a sha256 of every
matrix of the measured part (in order) and of the dead letters: equal on two trees = the same bytes.
``time`` runs the measured part ``--repeat`` times outside valgrind and prints µs/event of each stage;
``kinds`` each kind's ``decode_rows`` and the decode step on one micro-batch in a hot loop.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import sys
import time
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "compiled")


class _Failures:
    failures: list[Any] = []


def _setup(args: argparse.Namespace) -> tuple[Any, Any, list[list[Any]], list[list[Any]]]:
    """The decoder, the runtimes' feature sets, the warm-up's and the measured part's micro-batches."""
    from scorer.bench.loadgen import payloads, templates
    from scorer.bench.realistic import stream_templates
    from scorer.demo import bundled_capture
    from scorer.events.decode import EventDecoder
    from scorer.events.structs import EventKind
    from scorer.features import feature_set
    from scorer.pipeline.source import input_record

    tpl = stream_templates(args, templates(bundled_capture(), tuple(EventKind)))
    records = [input_record(k, v, key, f"events.{k.value}", 0, i)
               for i, (k, key, v) in enumerate(payloads(tpl, args.warm + args.events))]
    versions = {EventKind.NETFLOW: "", EventKind.EDR: "v3", EventKind.SIEM: ""}  # what the shipped models read
    runtimes = {k: SimpleNamespace(features=feature_set(k, v), kind=k) for k, v in versions.items()}

    def chunks(part: list[Any]) -> list[list[Any]]:
        return [part[i:i + args.batch] for i in range(0, len(part), args.batch)]

    return EventDecoder(), runtimes, chunks(records[:args.warm]), chunks(records[args.warm:])


def _decode(decoder: Any, runtimes: Any, chunks: list[list[Any]]) -> list[Any]:
    from scorer.pipeline.decode import decode

    return [decode(decoder, chunk, runtimes, {}) for chunk in chunks]


def _warm(decoder: Any, runtimes: Any, warm: list[list[Any]]) -> None:
    """Both stages over the warm-up's records, then the collector as ``scorer run`` sets it."""
    from scorer.service.gctune import tune_gc

    _features(runtimes, _decode(decoder, runtimes, warm))
    tune_gc()


def _features(runtimes: Any, batches: list[Any]) -> list[Any]:
    from scorer.pipeline.features import compute_features

    return [compute_features(runtimes[kind], items, _Failures)[0]  # type: ignore[arg-type]
            for batch in batches for kind, items in batch.by_kind.items()]


def count(args: argparse.Namespace) -> None:
    decoder, runtimes, warm, measured = _setup(args)
    _warm(decoder, runtimes, warm)  # outside the count
    batches: list[Any] = functools.reduce(lambda _, __: _decode(decoder, runtimes, measured), range(1), [])
    functools.reduce(lambda _, __: _features(runtimes, batches), range(1), None)
    print("events", sum(map(len, measured)), file=sys.stderr)


def digest(args: argparse.Namespace) -> None:
    decoder, runtimes, warm, measured = _setup(args)
    _warm(decoder, runtimes, warm)
    batches = _decode(decoder, runtimes, measured)
    h = hashlib.sha256()
    for x in _features(runtimes, batches):
        h.update(str(x.shape).encode() + str(x.dtype).encode() + x.tobytes())
    dead = hashlib.sha256(repr([(f.reason, f.ref) for b in batches for f in b.failures]).encode())
    print("matrices", h.hexdigest()[:16], "dead letters", dead.hexdigest()[:16], sum(map(len, measured)), "events")


def timed(args: argparse.Namespace) -> None:
    decoder, runtimes, warm, measured = _setup(args)
    _warm(decoder, runtimes, warm)
    n, spent = sum(map(len, measured)), {"decode": 0.0, "features": 0.0}
    for _ in range(args.repeat):  # the windows see the same flows again: the same work, not the same rows
        t0 = time.process_time()
        batches = _decode(decoder, runtimes, measured)
        t1 = time.process_time()
        _features(runtimes, batches)
        spent["decode"] += t1 - t0
        spent["features"] += time.process_time() - t1
    print(" ".join(f"{k} {v / (n * args.repeat) * 1e6:.3f}" for k, v in spent.items()), "µs/event (CPU)")


def kinds(args: argparse.Namespace) -> None:
    """Each kind's ``decode_rows`` over the first measured micro-batch's values, in a hot loop
    (best of ``--repeat`` passes): µs per row, and the whole decode step per event."""
    import timeit

    from scorer.events.columnar import decode_rows
    from scorer.pipeline.decode import decode

    decoder, runtimes, _, measured = _setup(args)
    chunk = measured[0]
    for kind in runtimes:
        values = [r.value for r in chunk if r.kind is kind]
        views = getattr(runtimes[kind].features, "reads_views", False)
        run = functools.partial(decode_rows, kind, values, 1 << 20, views)
        best = min(timeit.repeat(run, number=1, repeat=args.repeat))
        print(f"{kind.value} {len(values)} rows {best / len(values) * 1e6:.3f} µs/row", end="; ")
    best = min(timeit.repeat(lambda: decode(decoder, chunk, runtimes, {}), number=1, repeat=args.repeat))
    print(f"decode step {best / len(chunk) * 1e6:.3f} µs/event")


def main() -> None:
    from scorer.bench.realistic import add_stream_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("count", "digest", "time", "kinds"))
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--events", type=int, default=6144)
    parser.add_argument("--warm", type=int, default=16000)
    parser.add_argument("--repeat", type=int, default=5)
    add_stream_arguments(parser)
    args = parser.parse_args()
    {"count": count, "digest": digest, "time": timed, "kinds": kinds}[args.command](args)


if __name__ == "__main__":
    main()
