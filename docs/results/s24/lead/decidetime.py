"""Capture/realistic stream at batch B: decide's time split: FindingWriter.write per kind (and per finding), the rest.
    SCORER_DATA_DIR=../shared/data .venv/bin/python docs/results/s24/lead/decidetime.py capture|realistic B NB"""
import argparse, asyncio, os, sys, time, collections
from pathlib import Path
os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "vectorized")
from scorer.bench.stages import _records
from scorer.config import Settings
from scorer.service.build import build_scorer
from scorer.service.gctune import tune_gc
from scorer.alerts import findingjson
import scorer.pipeline.decide as dmod

stream, B, NB = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
args = argparse.Namespace(stream=stream, attack_share=0.01, data_dir=Path(os.environ.get("SCORER_DATA_DIR", "../shared/data")))
recs = _records(16000 + B * NB, args)
W = collections.defaultdict(float); N = collections.Counter()
orig_write = findingjson.FindingWriter.write
def write(self, items, decisions, *a, **k):
    t = time.perf_counter(); out = orig_write(self, items, decisions, *a, **k); W[self.kind.value] += time.perf_counter() - t
    N[self.kind.value] += len(decisions); return out
findingjson.FindingWriter.write = write
orig_decide = dmod.decide
D = [0.0]
def decide(*a, **k):
    t = time.perf_counter(); out = orig_decide(*a, **k); D[0] += time.perf_counter() - t; return out
import scorer.pipeline.scoring as smod
smod.decide = decide
async def main():
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))
    for i in range(0, 16000, 512):
        await scorer.score(recs[i:i + 512])
    tune_gc()
    W.clear(); N.clear(); D[0] = 0
    meas = recs[16000:]
    t = time.process_time()
    for i in range(0, len(meas), B):
        await scorer.score(meas[i:i + B])
    cpu = time.process_time() - t
    n = len(meas)
    print(f"{stream} {B}: cpu {cpu/n*1e6:.2f} us/event; decide {D[0]/n*1e6:.2f} us/event; writes {sum(W.values())/n*1e6:.2f} us/event")
    for k in W:
        print(f"   {k}: {N[k]} findings ({N[k]/n:.3f}/event)  {W[k]/max(N[k],1)*1e6:.2f} us/finding  {W[k]/n*1e6:.2f} us/event")
asyncio.run(main())
