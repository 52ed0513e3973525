# The EDR feature pass (_edr.run) timed alone on the rows of a real realistic-stream batch, at
# several row counts with hot caches: is its cost at a 50-record batch a per-call fixed cost?
#   SCORER_DATA_DIR=../shared/data python docs/results/s27/native_call_rows.py   (docs/benchmarks.md, 62)
import asyncio, os, time, argparse, pathlib, collections
os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "vectorized")
import scorer.native
from scorer.bench import stages
from scorer.config import Settings
from scorer.service.build import build_scorer
captured = collections.defaultdict(list)
edr = scorer.native.module("_edr")
orig_run = edr.run
def run(compiled, evs, out):
    captured["edr.run"].append((compiled, list(evs), out.copy()))
    return orig_run(compiled, evs, out)
edr.run = run
async def main():
    args = argparse.Namespace(stream="realistic", attack_share=0.01, data_dir=pathlib.Path(os.environ.get("SCORER_DATA_DIR", "../shared/data")))
    scorer = build_scorer(Settings())
    recs = stages._records(16000 + 20000, args)
    await stages.measure(scorer, [recs[:16000]], 512)
    captured.clear()
    await stages.measure(scorer, [recs[16000:]], 2000)
    for name, calls in captured.items():
        compiled, evs, out = calls[0]
        print(name, len(calls), "calls; rows in first", len(evs), out.shape)
        for n in (1, 4, 17, 64, 256, 1024):
            e = evs[:n]; o = out[:n].copy()
            reps = max(20, 20000 // n)
            t = time.perf_counter()
            for _ in range(reps): orig_run(compiled, e, o)
            dt = (time.perf_counter() - t) / reps * 1e6
            print(f"  n={n:5d} {dt:8.2f} us/call {dt/n:6.3f} us/row")
asyncio.run(main())
