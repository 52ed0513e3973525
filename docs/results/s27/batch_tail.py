# Which 50-record batches of the realistic stream cost the most, in process: CPU a batch by its
# alerts and rule hits, and the 15 slowest with their stages (docs/benchmarks.md, 62).
import asyncio, os, time, argparse, pathlib, collections
import numpy as np
os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "vectorized")
from scorer.bench import stages
from scorer.config import Settings
from scorer.service.build import build_scorer
from scorer.service.gctune import tune_gc
async def main():
    args = argparse.Namespace(stream="realistic", attack_share=0.01, data_dir=pathlib.Path(os.environ.get("SCORER_DATA_DIR", "../shared/data")))
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))
    recs = stages._records(16000 + 100000, args)
    await stages.measure(scorer, [recs[:16000]], 512)
    tune_gc()
    body = recs[16000:]
    rows = []
    for i in range(0, len(body), 50):
        chunk = body[i:i+50]
        t = time.process_time()
        o = await scorer.score(chunk)
        dt = time.process_time() - t
        rows.append((dt*1e3, len(o.alerts), sum(o.rule_hits.values()), dict(o.timings), dict(o.consumed)))
    cpu = np.array([r[0] for r in rows]); al = np.array([r[1] for r in rows]); hits = np.array([r[2] for r in rows])
    print("batches", len(rows), "median ms", np.median(cpu), "p99", np.percentile(cpu, 99))
    for a in sorted(set(al)):
        m = al == a
        print(f"alerts={a}: n={m.sum()} median {np.median(cpu[m]):.3f} ms p90 {np.percentile(cpu[m],90):.3f}")
    for h in sorted(set(hits))[:8]:
        m = hits == h
        print(f"rule hits={h}: n={m.sum()} median {np.median(cpu[m]):.3f} ms")
    top = np.argsort(cpu)[-15:]
    for k in top:
        r = rows[k]
        print(f"{r[0]:.3f} ms alerts {r[1]} hits {r[2]} consumed {r[4]} " + " ".join(f"{s}={v*1e3:.3f}" for s, v in r[3].items() if v > 0.00005))
asyncio.run(main())
