"""Compiled trees on the realistic stream's own 50-row matrices: hot (one model called again
and again) vs with the cache churned between calls (a 4 MiB sweep, as the other stages do)."""
import asyncio, sys, argparse, time, numpy as np
from scorer.bench.loadgen import payloads, templates
from scorer.bench.realistic import stream_templates, add_stream_arguments
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind
from scorer.config import Settings
from scorer.pipeline.source import input_record
from scorer.service.build import build_scorer
import scorer.pipeline.inference as inf
p = argparse.ArgumentParser(); add_stream_arguments(p)
args = p.parse_args(["--stream", "realistic"])
tpl = stream_templates(args, templates(bundled_capture(), tuple(EventKind)))
items = [(k.value, key, v) for k, key, v in payloads(tpl, 6000)]
records = [input_record(EventKind(k), v, key, f"events.{k}", 0, i) for i, (k, key, v) in enumerate(items)]
s = build_scorer(Settings())
caught = {}
orig = inf.Inference.launch
def launch(self, kind, x, *a, **kw):
    caught.setdefault(kind, []).append(x.copy())
    return orig(self, kind, x, *a, **kw)
inf.Inference.launch = launch
async def run():
    for i in range(0, len(records), 50): await s.score(records[i:i+50])
asyncio.run(run())
fb = s.backend.fallback
kinds = list(caught)
trees = {k: fb.load(s.runtimes[k].model).trees for k in kinds}
junk = np.ones(4 << 20, dtype=np.uint8)
def bench(churn):
    per = dict.fromkeys(kinds, 0.0); n = 0
    for j in range(40, min(len(v) for v in caught.values())):
        n += 1
        for k in kinds:
            if churn: junk.sum()
            m = caught[k][j]; c = time.perf_counter(); trees[k].score(m); per[k] += time.perf_counter() - c
    return {k.value: round(v/n*1e6, 1) for k, v in per.items()}, {k.value: caught[k][40].shape for k in kinds}
for churn in (False, True, False, True, False, True):
    print("churn" if churn else "hot  ", bench(churn))
