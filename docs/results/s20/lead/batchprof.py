"""A 50-record batch's Python, by function: the realistic stream (vectorized engine), warmed on 16,000
events, then NB batches of B under sys.setprofile (calls per batch, `calls`) or cProfile (`time`).
    SCORER_DATA_DIR=../shared/data python docs/results/s20/lead/batchprof.py calls|time B NB (STREAM=capture: the bundled capture)"""
import argparse, asyncio, sys, collections, os, cProfile, pstats
from pathlib import Path
os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "vectorized")
from scorer.bench.stages import _records
from scorer.config import Settings
from scorer.service.build import build_scorer
from scorer.pipeline.sink import score_records
import msgspec

MODE, B, NB = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
args = argparse.Namespace(stream=os.environ.get("STREAM","realistic"), attack_share=0.01, data_dir=Path(os.environ.get("SCORER_DATA_DIR", "../shared/data")))
recs = _records(16000 + B * NB, args)


def calls_by_function() -> tuple[collections.Counter[str], object]:
    calls: collections.Counter[str] = collections.Counter()

    def prof(frame, event, arg):
        if event == "call":
            c = frame.f_code
            calls[f"{c.co_filename.split('/work/main/')[-1]}:{c.co_name}"] += 1
        elif event == "c_call":
            calls[f"C {getattr(arg, '__qualname__', arg)}"] += 1
    return calls, prof


async def main():
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))
    for i in range(0, 16000, 512):
        await scorer.score(recs[i:i + 512])
    enc = msgspec.json.Encoder()
    meas = recs[16000:]
    calls, prof = calls_by_function()
    pr = cProfile.Profile()
    if MODE == "calls":
        sys.setprofile(prof)
    else:
        pr.enable()
    for i in range(0, len(meas), B):
        out = await scorer.score(meas[i:i + B])
        score_records("scores", out.scores, enc)
    sys.setprofile(None)
    pr.disable()
    if MODE == "calls":
        print(f"calls per batch: {sum(calls.values()) / NB:.0f}")
        for k, v in calls.most_common(70):
            print(f"{v / NB:8.1f}  {k}")
        return
    rows = [(tt, ct, nc, f"{f.split('/work/main/')[-1].split('site-packages/')[-1]}:{l}:{name}")
            for (f, l, name), (cc, nc, tt, ct, callers) in pstats.Stats(pr).stats.items()]
    print(f"total tottime per batch {sum(r[0] for r in rows) / NB * 1e6:.0f} us")
    for tt, ct, nc, name in sorted(rows, reverse=True)[:45]:
        print(f"{tt / NB * 1e6:8.1f} us self {ct / NB * 1e6:8.1f} us cum {nc / NB:7.1f} calls  {name}")

asyncio.run(main())
