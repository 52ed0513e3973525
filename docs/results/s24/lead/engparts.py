"""RuleEngine construction by part (the collector off, best of 3; the wrappers add ~25%).
    .venv/bin/python docs/results/s24/lead/engparts.py  (the first numbers in observed.txt were taken with
    json.dumps wrapped too, on the code before 7c67d24, whose builders were in scorer.rules.engine)"""
import gc, sys, time, json
from pathlib import Path
import scorer.rules.engine as RE
import scorer.rules.index as E  # (before baa3132 the builders were in scorer.rules.engine)
import scorer.rules.bitsets as B
from scorer.rules.pack import read_pack
gc.disable()
d = Path("rule_repository/sigma_windows"); d = d / sorted(p.name for p in d.iterdir() if p.name.isdigit())[-1]
pack = read_pack(d)
acc = {}
def wrap(mod, name, top_only=True):
    f = getattr(mod, name); depth = [0]
    def w(*a, **k):
        if depth[0]: return f(*a, **k)
        depth[0] += 1; t = time.thread_time()
        try: return f(*a, **k)
        finally:
            depth[0] -= 1; acc[name] = acc.get(name, 0) + time.thread_time() - t
    setattr(mod, name, w)
for n in ("atom_ids", "flat_tree", "compile_tree"): wrap(E, n)
for cls in ("Triggers", "FieldMatcher", "Heads"):
    c = getattr(E, cls)
    def mk(c=c, cls=cls):
        def w(*a, **k):
            t = time.thread_time(); r = c(*a, **k); acc[cls] = acc.get(cls, 0) + time.thread_time() - t; return r
        return w
    setattr(E, cls, mk())
for name in ("getter", "column_reader", "raw_column_reader", "canonical_column_reader", "native_read", "native_get"):
    wrap(E, name)
best = None
for _ in range(3):
    acc.clear(); t = time.thread_time(); RE.RuleEngine(pack.rules, pack.atoms, pack.conditions); tot = time.thread_time() - t
    if best is None or tot < best[0]: best = (tot, dict(acc))
print(f"RuleEngine {best[0]*1e3:.0f} ms:", {k: round(v * 1e3, 1) for k, v in sorted(best[1].items(), key=lambda kv: -kv[1])})
