"""Capture stream: the parts of an EDR and a netflow finding, timed over the alerting rows of real batches.
    SCORER_DATA_DIR=../shared/data .venv/bin/python docs/results/s24/lead/findparts.py"""
import argparse, asyncio, os, sys, time, collections
from pathlib import Path
os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "vectorized")
import msgspec
from scorer.bench.stages import _records
from scorer.config import Settings
from scorer.service.build import build_scorer
from scorer.alerts import findingjson as fj
from scorer.events.columnar import VIEWS, expand
from scorer.events.edrrows import EndpointRow, canonical
from scorer.native import findings as native

args = argparse.Namespace(stream="capture", attack_share=0.01, data_dir=Path(os.environ.get("SCORER_DATA_DIR", "../shared/data")))
recs = _records(16000 + 2048 * 4, args)
captured = []
orig = fj.FindingWriter.write
def write(self, items, decisions, rules_of, pack, now_ms=None):
    captured.append((self, [items[d.row] for d in decisions], list(decisions), rules_of, pack))
    return orig(self, items, decisions, rules_of, pack, now_ms)
fj.FindingWriter.write = write
def t(f, n=5):
    best = 1e9
    for _ in range(n):
        s = time.perf_counter(); f(); best = min(best, time.perf_counter() - s)
    return best
async def main():
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))
    for i in range(0, 16000, 512):
        await scorer.score(recs[i:i + 512])
    captured.clear()
    for i in range(16000, len(recs), 2048):
        await scorer.score(recs[i:i + 2048])
    by = collections.defaultdict(list)
    for w, rows, ds, rules_of, pack in captured:
        by[w.kind.value].append((w, rows, ds, rules_of, pack))
    enc = msgspec.json.Encoder().encode
    for kind, lst in by.items():
        w, rows, ds, rules_of, pack = lst[0]
        rows = [r for l in lst for r in l[1]]; ds = [d for l in lst for d in l[2]]
        n = len(rows)
        whole = t(lambda: orig(w, rows, [d._replace(row=i) if hasattr(d, '_replace') else msgspec.structs.replace(d, row=i) for i, d in enumerate(ds)], rules_of, pack)) / n
        print(f"{kind}: {n} findings, write {whole*1e6:.2f} us each; row type {type(rows[0][0]).__name__}")
        if kind == "netflow":
            vals = [rec.value for _, rec in rows]
            sp = t(lambda: [native.flow_split(v, fj._STAT_NAMES) for v in vals]) / n
            heads = [native.flow_split(v, fj._STAT_NAMES) for v in vals]
            dec = t(lambda: [fj._FLOW_DATA.decode(h) for h, _ in heads]) / n
            flows = [fj.FindingWriter._flow(r, rec) for r, rec in rows]
            e = t(lambda: [enc(f) for f in flows]) / n
            fl = t(lambda: [fj.FindingWriter._flow(r, rec) for r, rec in rows]) / n
            print(f"   flow_split {sp*1e6:.2f}  head decode {dec*1e6:.2f}  _flow total {fl*1e6:.2f}  enc(flow) {e*1e6:.2f}  (us)")
            flows0 = [fj._FLOW_DATA.decode(h) for h, _ in heads]
            rw = t(lambda: [msgspec.Raw(s) for _, s in heads]) / n
            rp = t(lambda: [msgspec.structs.replace(f, extra=msgspec.Raw(s), uid=f.uid or "x") for f, (_, s) in zip(flows0, heads)]) / n
            print(f"   Raw {rw*1e6:.2f}  replace+Raw {rp*1e6:.2f}")
            print(f"   record bytes mean {sum(map(len, vals))/n:.0f}, stats json {sum(len(s or b'') for _, s in heads)/n:.0f}")
        if kind == "edr":
            can = t(lambda: [canonical(r) if type(r) is EndpointRow else r for r, _ in rows]) / n
            evs = [canonical(r) if type(r) is EndpointRow else r for r, _ in rows]
            ro = t(lambda: [rules_of(e) for e in evs]) / n
            datas = [e if e.label is None else msgspec.structs.replace(e, label=None) for e in evs]
            e = t(lambda: [enc(d) for d in datas]) / n
            print(f"   canonical {can*1e6:.2f}  rules_of {ro*1e6:.2f}  enc(data) {e*1e6:.2f}  (us); data json {sum(len(enc(d)) for d in datas)/n:.0f} B")
asyncio.run(main())
