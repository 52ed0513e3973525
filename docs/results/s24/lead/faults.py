"""Minor page faults and CPU per event of the stage bench's scoring (realistic/capture, batch B).
    SCORER_DATA_DIR=../shared/data .venv/bin/python docs/results/s24/lead/faults.py realistic|capture B"""
import argparse, asyncio, os, resource, sys, time
from pathlib import Path
os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "vectorized")
from scorer.bench.stages import _records, measure
from scorer.config import Settings
from scorer.service.build import build_scorer
from scorer.service.gctune import tune_gc

async def main():
    stream, B = sys.argv[1], int(sys.argv[2])
    args = argparse.Namespace(stream=stream, attack_share=0.01, data_dir=Path(os.environ.get("SCORER_DATA_DIR", "../shared/data")))
    n = 40000
    recs = _records(16000 + 2 * n, args)
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))
    await measure(scorer, [recs[:16000]], 512)
    tune_gc()
    for r in range(2):
        chunk = recs[16000 + r * n: 16000 + (r + 1) * n]
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        res = await measure(scorer, [chunk], B)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        print(f"{stream} {B}: cpu {res['cpu']:.2f} us/event  minflt/event {(ru1.ru_minflt - ru0.ru_minflt) / n:.4f}  "
              f"sys {(ru1.ru_stime - ru0.ru_stime) / n * 1e6:.2f} us/event  maxrss {ru1.ru_maxrss/1024:.0f} MB")

asyncio.run(main())
