import asyncio, argparse, time
from scorer.bench.loadgen import payloads, templates
from scorer.bench.realistic import stream_templates, add_stream_arguments
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind
from scorer.config import Settings
from scorer.pipeline.source import input_record
from scorer.service.build import build_scorer
import scorer.pipeline.scoring as sc
p = argparse.ArgumentParser(); add_stream_arguments(p)
args = p.parse_args(["--stream", "realistic"])
tpl = stream_templates(args, templates(bundled_capture(), tuple(EventKind)))
items = [(k.value, key, v) for k, key, v in payloads(tpl, 12000)]
records = [input_record(EventKind(k), v, key, f"events.{k}", 0, i) for i, (k, key, v) in enumerate(items)]
s = build_scorer(Settings())
caught = []; tm = []
orig = sc.apply_rules
def ar(stage, items, batch):
    caught.append([e for e, _ in items]); c = time.perf_counter()
    r = orig(stage, items, batch); tm.append(time.perf_counter() - c); return r
sc.apply_rules = ar
async def run():
    for i in range(0, len(records), 50): await s.score(records[i:i+50])
asyncio.run(run())
stage = s.runtimes[EventKind.EDR].rules
eng = stage.engine
sl = caught[60:]
print("in pipeline: apply_rules median", sorted(tm[60:])[len(tm[60:])//2]*1e6, "µs")
for rep in range(3):
    c = time.perf_counter()
    for evs in sl: eng.evaluate(evs)
    print("hot loop over the same batches: evaluate", (time.perf_counter()-c)/len(sl)*1e6, "µs per batch")
    c = time.perf_counter()
    for evs in sl:
        for _ in range(5): eng.evaluate(evs)
    print("each batch 5x in a row:", (time.perf_counter()-c)/len(sl)/5*1e6, "µs per batch")
import cProfile, pstats
import sys; sys.exit(0) if False else None
pr = cProfile.Profile(); pr.enable()
for evs in sl: eng.evaluate(evs)
pr.disable(); pstats.Stats(pr).sort_stats("tottime").print_stats(25)
import collections
st = collections.Counter()
from scorer.rules import engine as E
code = eng._code
class Counting:
    pass
orig_of = eng.variant_triggers.of
def of(amask, always=True, native=None):
    out = orig_of(amask, always, native); st["cand"] += len(out); st["amask"] += len(amask); st["amask_nz"] += sum(1 for v in amask.values() if v); return out
eng.variant_triggers.of = of
orig_fields = eng._fields_of_rules
for evs in sl: eng.evaluate(evs)
print({k: v/len(sl) for k, v in st.items()}, "per batch; variants", len(eng.variants), "logsources", len(eng.ls_trees))
