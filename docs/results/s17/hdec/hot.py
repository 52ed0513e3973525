"""Hot-loop decode and decide on the realistic stream's own batches (captured from the pipeline)."""
import asyncio, sys, os, argparse, time, gc
os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "vectorized")
os.environ.setdefault("SCORER_DATA_DIR", "/work/shared/data")
from scorer.bench import stages
from scorer.bench.realistic import add_stream_arguments
from scorer.config import Settings
from scorer.service.build import build_scorer
from scorer.service.gctune import tune_gc
import scorer.pipeline.scoring as sc

p = argparse.ArgumentParser(); add_stream_arguments(p); p.add_argument("--batch", type=int, default=50)
p.add_argument("--events", type=int, default=10000); p.add_argument("--reps", type=int, default=5)
p.add_argument("--sweep", type=int, default=0, help="KiB of memory swept between calls")
args = p.parse_args(["--stream", "realistic"] + sys.argv[1:])
captured_dec, captured_decide = [], []
orig_decode, orig_decide = sc.decode, sc.decide
def cap_decode(decoder, records, rt, sh):
    captured_dec.append((decoder, records, rt, sh)); return orig_decode(decoder, records, rt, sh)
def cap_decide(batch, results, prefix, collect):
    captured_decide.append((batch, results, prefix, collect)); return orig_decide(batch, results, prefix, collect)
async def main():
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))
    recs = stages._records(16000 + args.events, args)
    await stages.measure(scorer, [recs[:16000]], 512)
    tune_gc()
    sc.decode, sc.decide = cap_decode, cap_decide
    await stages.measure(scorer, [recs[16000:]], args.batch)
    sc.decode, sc.decide = orig_decode, orig_decide
asyncio.run(main())
from scorer.pipeline.decode import decode
from scorer.pipeline.decide import decide
import numpy as np
junk = np.zeros(args.sweep * 128, np.float64) if args.sweep else None
def run(fn, caps):
    best = None
    for _ in range(args.reps):
        t = 0.0
        for c in caps:
            if junk is not None: np.add(junk, 1.0, out=junk)
            t0 = time.perf_counter(); fn(*c); t += time.perf_counter() - t0
        best = t if best is None else min(best, t)
    return best / args.events * 1e6
print(f"batch {args.batch}: decode {run(decode, captured_dec):.3f}  decide {run(decide, captured_decide):.3f} µs/event (hot loop, best of {args.reps}, sweep {args.sweep} KiB)")
if os.environ.get("KINDS"):
    from scorer.events.columnar import decode_rows
    from scorer.features.base import column
    from scorer.events.structs import EventKind
    from scorer.events.flowviews import decode_all
    from scorer.events.columnar import _DECODERS
    per = {}
    for k in EventKind:
        vals = []
        for decoder, records, rt, sh in captured_dec:
            vs = [r.value for r in records if r.kind is k]
            vals.append((k, vs, decoder.max_record_bytes, getattr(rt[k].features, "reads_views", False)))
        n = sum(len(v[1]) for v in vals)
        t = run(lambda *a: decode_rows(*a), vals) * args.events / n
        dec = _DECODERS[k].decode
        t2 = run(lambda k, vs, m, v: decode_all(dec, vs), vals) * args.events / n if k is not EventKind.NETFLOW else 0
        print(f"  {k.value}: decode_rows {t:.3f} µs per {k.value} event, msgspec map alone {t2:.3f}")
