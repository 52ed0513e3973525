# The scorer (BatchScorer, realistic stream) at one batch size: --mode cprofile (per-function
# profile of the measured part), time (CPU per event), loop (the measured part 6 times, for py-spy).
# Used by section 37 (hfix-cg.sh runs it under cachegrind).
import asyncio, cProfile, pstats, sys, time, argparse
from scorer.bench.loadgen import payloads, templates
from scorer.bench.realistic import stream_templates, add_stream_arguments
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind
from scorer.config import Settings
from scorer.pipeline.source import input_record
from scorer.service.build import build_scorer
from scorer.service.gctune import tune_gc

p = argparse.ArgumentParser(); add_stream_arguments(p)
p.add_argument("--batch", type=int, default=50); p.add_argument("--n", type=int, default=20000)
p.add_argument("--warm", type=int, default=16000); p.add_argument("--mode", default="cprofile")
args = p.parse_args(["--stream", "realistic"] + sys.argv[1:])
tpl = stream_templates(args, templates(bundled_capture(), tuple(EventKind)))
items = [(k.value, key, v) for k, key, v in payloads(tpl, args.warm + args.n)]
records = [input_record(EventKind(k), v, key, f"events.{k}", 0, i) for i, (k, key, v) in enumerate(items)]
scorer = build_scorer(Settings())
async def run(recs, b):
    for i in range(0, len(recs), b):
        await scorer.score(recs[i:i+b])
asyncio.run(run(records[:args.warm], args.batch))
tune_gc()
meas = records[args.warm:]
if args.mode == "cprofile":
    pr = cProfile.Profile(); pr.enable()
    asyncio.run(run(meas, args.batch))
    pr.disable()
    pr.dump_stats(f"/tmp/hfix/b{args.batch}.prof"); st = pstats.Stats(pr); st.sort_stats("tottime").print_stats(45)
    st.sort_stats("cumtime").print_stats(60)
else:
    c=time.process_time(); asyncio.run(run(meas, args.batch)); print("cpu us/event", (time.process_time()-c)/len(meas)*1e6)
if args.mode == "loop":
    c=time.process_time()
    for _ in range(6):
        asyncio.run(run(meas, args.batch))
    print("cpu us/event", (time.process_time()-c)/len(meas)/6*1e6)
