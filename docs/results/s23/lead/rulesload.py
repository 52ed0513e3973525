"""RuleStage.load of the shipped sigma_windows pack by part, main-thread CPU ms, the collector off
as `scorer run` has it (best of N fresh loads in one process).
    .venv/bin/python docs/results/s23/lead/rulesload.py [N]"""
import gc, sys, time
from pathlib import Path
import scorer.rules.engine as E
from scorer.rules.pack import read_pack
from scorer.rules.scanners import prepare
gc.disable()
parts: dict[str, list[float]] = {}
def timed(name, f, *a):
    t = time.thread_time(); r = f(*a); parts.setdefault(name, []).append((time.thread_time() - t) * 1e3); return r
d = Path("rule_repository/sigma_windows")
d = d / sorted(p.name for p in d.iterdir() if p.name.isdigit())[-1]
for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
    pack = timed("read_pack", read_pack, d)
    engine = timed("RuleEngine", E.RuleEngine, pack.rules, pack.atoms, pack.conditions)
    timed("prepare", prepare, engine)
print({k: round(min(v), 1) for k, v in parts.items()}, "ms (best)")
