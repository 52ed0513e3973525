# How often an EDR group-event repeats the previous event's parts (the realistic stream's captured kind batches): python same_parts.py from /work/main
import sys, runpy
sys.argv = ["cg.py", "--batch", "50", "--events", "3000", "--warm", "2000"]
import functools
functools.reduce = lambda *a, **k: None  # skip the replay
g = runpy.run_path("docs/results/s18/hevfeat/cg.py")
feat = g["feat"]
from scorer.features import edr, edr_security, edr_objects, edr_cmdline
G = edr.GROUPS + edr_security.GROUPS + edr_objects.GROUPS + edr_cmdline.GROUPS
tot = same = 0
per = {}
for rt, items, b in feat:
    if rt.kind.value != "edr": continue
    evs = [it[0] for it in items]
    for gr in G:
        prev = None
        for e in evs:
            if gr.gate is not None and e.event_code not in gr.gate: continue
            vals = []
            for k, name in gr.parts:
                if k == "f": vals.append(e.fields.get(name))
                elif k == "c": vals.append(e.event_code)
                elif k == "p": vals.append(None)
                else: vals.append(getattr(e, name))
            tot += 1
            s = prev is not None and vals == prev
            same += s
            per.setdefault(gr.first, [0, 0]); per[gr.first][0] += 1; per[gr.first][1] += s
            prev = vals
print("group-events", tot, "same as previous", same, same / tot)
for k, (a, b) in per.items(): print(k, a, b)
