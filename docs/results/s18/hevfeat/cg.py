"""Instructions of decode and features (compute_features) on the realistic stream's own batches.

Runs the pipeline over --warm records, captures what it hands decode and compute_features over
--events more, then replays each in one functools.reduce (callgrind toggles on it; cg.sh dumps after
each): dump 1 = decode, dump 2 = features. ``digest`` mode prints sha256 of decode's rows' uids and of
every feature matrix instead (same on both trees = same outputs)."""
import argparse
import asyncio
import functools
import hashlib
import os
import sys

os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "vectorized")
os.environ.setdefault("SCORER_DATA_DIR", "/work/shared/data")
from scorer.bench import stages  # noqa: E402
from scorer.bench.realistic import add_stream_arguments  # noqa: E402
from scorer.config import Settings  # noqa: E402
from scorer.service.build import build_scorer  # noqa: E402
from scorer.service.gctune import tune_gc  # noqa: E402
import scorer.pipeline.scoring as sc  # noqa: E402

p = argparse.ArgumentParser()
add_stream_arguments(p)
p.add_argument("mode", nargs="?", default="count")
p.add_argument("--batch", type=int, default=50)
p.add_argument("--events", type=int, default=3000)
p.add_argument("--warm", type=int, default=8000)
args = p.parse_args(["--stream", "realistic"] + sys.argv[1:])
dec, feat = [], []
orig_decode, orig_feat = sc.decode, sc.compute_features


def cap_decode(decoder, records, rt, sh):
    dec.append((decoder, records, rt, sh))
    return orig_decode(decoder, records, rt, sh)


def cap_feat(runtime, items, batch):
    feat.append((runtime, list(items), batch))
    return orig_feat(runtime, items, batch)


async def main():
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))
    recs = stages._records(args.warm + args.events, args)
    await stages.measure(scorer, [recs[:args.warm]], 512)
    tune_gc()
    sc.decode, sc.compute_features = cap_decode, cap_feat
    await stages.measure(scorer, [recs[args.warm:]], args.batch)
    sc.decode, sc.compute_features = orig_decode, orig_feat
    return scorer


scorer = asyncio.run(main())
from scorer.pipeline.decode import decode  # noqa: E402
from scorer.pipeline.features import compute_features  # noqa: E402

if args.mode == "digest":
    h = hashlib.sha256()
    for c in dec:
        b = decode(*c)
        for kind, items in sorted(b.by_kind.items()):
            h.update(kind.value.encode() + repr([(type(r).__name__, r.uid) for r, _ in items]).encode())
        h.update(repr([(f.reason, f.message) for f in b.failures]).encode())
    print("decode", h.hexdigest()[:16])
    # features: a fresh scorer warmed the same way, then the captured batches in order
    fresh = build_scorer(Settings(inference={"backend": "onnxruntime"}))
    rts = {k: rt for k, rt in getattr(fresh, "runtimes").items()}
    hf = {}
    for runtime, items, batch in feat:
        x, kept = compute_features(rts[runtime.kind], items, batch)
        hf.setdefault(runtime.kind.value, hashlib.sha256()).update(x.tobytes() + str(x.shape).encode())
    for k, d in sorted(hf.items()):
        print("features", k, d.hexdigest()[:16])
    sys.exit(0)
kept = []
functools.reduce(lambda _, c: kept.append(decode(*c)), dec, None)
out = []
functools.reduce(lambda _, c: out.append(compute_features(*c)), feat, None)
print("events", sum(len(c[1]) for c in dec), "batches", len(dec), "kind batches", len(feat), "feature events", sum(len(c[1]) for c in feat))
