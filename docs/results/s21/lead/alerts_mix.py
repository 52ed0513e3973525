"""Alerts of the realistic stream (STREAM=capture: the bundled capture) by kind, raised_by and severity: 20,000
events after a 16,000-event warm-up, 2,048-record batches, the vectorized engine.
    SCORER_DATA_DIR=../shared/data .venv/bin/python docs/results/s21/lead/alerts_mix.py"""
import argparse, asyncio, os, collections, json
from pathlib import Path
os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "vectorized")
from scorer.bench.stages import _records
from scorer.config import Settings
from scorer.service.build import build_scorer
args = argparse.Namespace(stream=os.environ.get("STREAM","realistic"), attack_share=0.01, data_dir=Path(os.environ.get("SCORER_DATA_DIR", "../shared/data")))
recs = _records(36000, args)
async def main():
    s = build_scorer(Settings(inference={"backend": "onnxruntime"}))
    c = collections.Counter()
    for i in range(0, 36000, 2048):
        out = await s.score(recs[i:i+2048])
        if i < 16000: continue
        for a in out.alerts:
            f = json.loads(a.value)
            u = f.get("unmapped", {}).get("scorer", {})
            c[(f["finding_info"]["types"][0], u.get("raised_by"), f.get("severity"))] += 1
    for k, v in c.most_common(): print(v, k)
asyncio.run(main())
