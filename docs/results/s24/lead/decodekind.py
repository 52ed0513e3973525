"""decode_kind per kind over the realistic (or capture) stream, batches of 2,048, best of 5.
    SCORER_DATA_DIR=../shared/data .venv/bin/python docs/results/s24/lead/decodekind.py [realistic|capture]"""
import argparse, os, sys, time, collections
from pathlib import Path
from scorer.bench.stages import _records
from scorer.events.columnar import decode_kind
from scorer.events.structs import EventKind
args = argparse.Namespace(stream=sys.argv[1] if len(sys.argv) > 1 else "realistic", attack_share=0.01, data_dir=Path(os.environ.get("SCORER_DATA_DIR", "../shared/data")))
recs = _records(30000, args)
by = collections.defaultdict(list)
for r in recs: by[r.kind].append(r.value)
tot = len(recs)
for kind, vals in by.items():
    vals = vals[:8192]
    B = 2048
    best = 1e9
    for _ in range(5):
        t = time.process_time()
        for i in range(0, len(vals), B):
            decode_kind(kind, vals[i:i+B], 1 << 20, views=True)
        best = min(best, time.process_time() - t)
    print(f"{kind.value:8s} share {len(by[kind])/tot:.3f}  bytes/event {sum(map(len, vals))/len(vals):6.0f}  decode {best/len(vals)*1e6:.2f} us/event  -> {best/len(vals)*1e6*len(by[kind])/tot:.2f} us/stream-event")
