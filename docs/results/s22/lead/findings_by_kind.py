"""The capture's findings at 2,048-record batches: how many of each kind a FindingWriter writes over 6,144 events
(after 16,000 warm-up), the time in each kind's write and in the flows' statistics (FindingWriter._flow).
    SCORER_DATA_DIR=../shared/data .venv/bin/python docs/results/s22/lead/findings_by_kind.py"""
import argparse, asyncio, os, collections, time
from pathlib import Path
os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "vectorized")
from scorer.bench.stages import _records
from scorer.config import Settings
from scorer.service.build import build_scorer
from scorer.alerts import findingjson as fj
args = argparse.Namespace(stream="capture", attack_share=0.01, data_dir=Path(os.environ.get("SCORER_DATA_DIR", "../shared/data")))
recs = _records(16000 + 6144, args)
calls = collections.Counter(); spent = collections.Counter()
real_flow = fj.FindingWriter._flow
def flow(row, rec):
    calls["flow"] += 1; t = time.perf_counter(); r = real_flow(row, rec); spent["flow"] += time.perf_counter() - t; return r
fj.FindingWriter._flow = staticmethod(flow)
real_write = fj.FindingWriter.write
def write(self, items, decisions, *a, **k):
    calls[self.kind.value] += len(decisions); t = time.perf_counter(); r = real_write(self, items, decisions, *a, **k); spent[self.kind.value] += time.perf_counter() - t; return r
fj.FindingWriter.write = write
async def main():
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))
    for i in range(0, 16000, 512):
        await scorer.score(recs[i:i + 512])
    calls.clear(); spent.clear()
    for i in range(16000, len(recs), 2048):
        await scorer.score(recs[i:i + 2048])
    print(dict(calls)); print({k: f"{v/6144*1e6:.2f} us/event" for k, v in spent.items()})
asyncio.run(main())
