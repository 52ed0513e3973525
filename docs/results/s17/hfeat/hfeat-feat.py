"""The feature stage alone on the realistic stream's own kind batches (what the pipeline hands it).

    python hfeat-feat.py digest --batch 50     # sha256 of every matrix, per kind
    python hfeat-feat.py time --batch 50       # µs a batch per kind, hot (best of --reps)
    python hfeat-feat.py profile --batch 50    # cProfile calls per batch

Each runs the scorer over --warm records, then keeps the kind batches the pipeline hands
compute_features over --events more (FlowRow views do not pickle: all in one process).

The state (entity windows) of a fresh scorer is warmed with the same warm-up records before
the kept batches are replayed, so digests compare across trees.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import time

os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "vectorized")
os.environ.setdefault("SCORER_DATA_DIR", "/work/shared/data")


def _scorer():
    from scorer.config import Settings
    from scorer.service.build import build_scorer
    return build_scorer(Settings(inference={"backend": "onnxruntime"}))  # type: ignore[arg-type]


def _records(n, args):
    from scorer.bench.stages import _records as rec
    return rec(n, args)


async def _capture(args):
    import scorer.pipeline.scoring as scoring
    scorer = _scorer()
    records = _records(args.warm + args.events, args)
    from scorer.bench.stages import measure
    await measure(scorer, [records[:args.warm]], 512)
    kept = []
    real = scoring.compute_features

    def spy(runtime, items, batch):
        kept.append((runtime.kind.value, [it[0] for it in items]))
        return real(runtime, items, batch)
    scoring.compute_features = spy
    await measure(scorer, [records[args.warm:]], args.batch)
    return kept


def _features(kept):
    """Fresh feature sets (the scorer's own) warmed by the same batches once: state as in the pipeline."""
    scorer = _scorer()
    return {r.kind.value: r.features for r in scorer.runtimes.values()} if hasattr(scorer, "runtimes") else None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--events", type=int, default=6000)
    p.add_argument("--warm", type=int, default=16000)
    p.add_argument("--reps", type=int, default=5)
    from scorer.bench.realistic import add_stream_arguments
    add_stream_arguments(p)
    if "--stream" not in sys.argv:
        sys.argv += ["--stream", "realistic"]
    args = p.parse_args()
    kept = asyncio.run(_capture(args))
    from scorer.pipeline.scoring import BatchScorer  # noqa: F401
    sets = _sets()
    if args.mode == "digest":
        h = {}
        for kind, evs in kept:
            x = sets[kind].transform(evs)
            h.setdefault(kind, hashlib.sha256()).update(x.tobytes() + str(x.shape).encode())
        for kind, d in sorted(h.items()):
            print(kind, d.hexdigest()[:16])
    elif args.mode == "time":
        per = {}
        for _ in range(args.reps):
            fresh = _sets()
            for kind, evs in kept:
                t = time.perf_counter()
                fresh[kind].transform(evs)
                per.setdefault(kind, []).append(time.perf_counter() - t)
        n = {k: sum(1 for kk, _ in kept if kk == k) for k in per}
        ev = {k: sum(len(e) for kk, e in kept if kk == k) for k in per}
        tot = 0.0
        for k in sorted(per):
            # best rep per batch index
            xs = per[k]
            reps = [sum(xs[r * n[k]:(r + 1) * n[k]]) for r in range(args.reps)]
            best = min(reps)
            tot += best
            print(f"{k:8s} {best / n[k] * 1e6:8.1f} µs/batch  {best / ev[k] * 1e6:6.2f} µs/event")
        allev = sum(ev.values())
        print(f"total    {tot / allev * 1e6:.2f} µs per stream event, {tot / (allev / args.batch) * 1e6:.1f} µs per {args.batch}-record batch")
    elif args.mode == "loop":  # one kind's transform over its batches again and again (perf, callgrind)
        fresh = _sets()
        kind = os.environ.get("HFEAT_KIND", "edr")
        mine = [evs for k, evs in kept if k == kind]
        t = time.perf_counter()
        for _ in range(args.reps):
            for evs in mine:
                fresh[kind].transform(evs)
        print(kind, f"{(time.perf_counter() - t) / args.reps / len(mine) * 1e6:.1f} µs a batch")
    elif args.mode == "parts":  # EDR: the transform against its native pass alone (hot, best of reps)
        import numpy as np
        import scorer.native
        fresh = _sets()
        fs = fresh["edr"]
        mine = [evs for k, evs in kept if k == "edr"]
        for evs in mine:
            fs.transform(evs)
        native = scorer.native.module("_edr")
        outs = [np.zeros((len(evs), len(fs.names))) for evs in mine]

        def best(fn):
            return min(_clock(fn) for _ in range(args.reps)) / len(mine) * 1e6
        print(f"transform {best(lambda: [fs.transform(evs) for evs in mine]):.1f} µs a batch")
        print(f"run alone {best(lambda: [native.run(fs.plan._compiled, evs, o) for evs, o in zip(mine, outs)]):.1f}")
    elif args.mode == "count":  # under callgrind --toggle-collect=functools_reduce: the stage's instructions
        import functools
        fresh = _sets()
        for kind, evs in kept:  # warm: each set's caches and windows as after one pass
            fresh[kind].transform(evs)
        functools.reduce(lambda _, kb: fresh[kb[0]].transform(kb[1]), kept, None)
        print(len(kept), "kind batches,", sum(len(e) for _, e in kept), "events")
    elif args.mode == "profile":
        import cProfile
        import pstats
        fresh = _sets()
        pr = cProfile.Profile()
        pr.enable()
        for kind, evs in kept:
            fresh[kind].transform(evs)
        pr.disable()
        st = pstats.Stats(pr)
        nb = len(kept) / 3
        rows = sorted(st.stats.items(), key=lambda kv: -kv[1][int(os.environ.get("HFEAT_SORT", "2"))])
        print(f"{sum(v[1] for v in st.stats.values()) / nb:.0f} profiled calls a 50-record batch's three kinds")
        for (f, line, fn), (cc, nc, tt, ct, _) in rows[:40]:
            print(f"{nc / nb:7.1f}/batch  tt {tt / nb * 1e6:6.1f}µs  ct {ct / nb * 1e6:6.1f}µs  {os.path.basename(f)}:{line} {fn}")


def _clock(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _sets():
    from scorer.service.build import build_scorer  # noqa: F401
    s = _scorer()
    out = {}
    for rt in _runtimes(s):
        out[rt.kind.value] = rt.features
    return out


def _runtimes(s):
    for name in ("runtimes", "_runtimes", "kinds"):
        v = getattr(s, name, None)
        if v:
            return list(v.values()) if isinstance(v, dict) else list(v)
    raise SystemExit(f"no runtimes on {type(s)}: {dir(s)}")


if __name__ == "__main__":
    main()
