"""A fresh process: its imports and RuleStage.load of the shipped sigma_windows pack, CPU seconds and peak RSS.
    .venv/bin/python docs/results/s22/lead/loadtime.py   (from the repo root; PYTHONPATH=<tree> for another tree)"""
import time, resource
t0 = time.process_time()
from pathlib import Path
from scorer.rules.annotate import RuleStage
t = time.process_time(); stage = RuleStage.load(Path("rule_repository"), "sigma_windows", None); load = time.process_time() - t
print(f"imports {t - t0:.2f} s, RuleStage.load {load:.2f} s CPU, peak rss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:.0f} MB")
