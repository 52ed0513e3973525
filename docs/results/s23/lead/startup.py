"""A fresh process builds the service's scorer as `scorer run` does (settings from the environment,
build_scorer, the backend started: models, engines, rule packs), main-thread CPU seconds by part.
    SCORER_DATA_DIR=../shared/data .venv/bin/python docs/results/s23/lead/startup.py [gc-off]
(from the repo root; PYTHONPATH=<tree> for another tree). `gc-off`: the collector disabled until built."""
import gc, sys, time
if "gc-off" in sys.argv:
    gc.disable()
t0 = time.thread_time()
import asyncio
from scorer.config import Settings
from scorer.service.build import build_scorer
t1 = time.thread_time()
settings = Settings()
scorer = build_scorer(settings, None)
t2 = time.thread_time()
asyncio.run(scorer.backend.start())
t3 = time.thread_time()
print(f"imports {t1 - t0:.2f} build_scorer {t2 - t1:.2f} backend.start {t3 - t2:.2f} total {t3 - t0:.2f} s CPU "
      f"(gc {'off' if 'gc-off' in sys.argv else 'on'}: {sum(s['collections'] for s in gc.get_stats())} collections)")
asyncio.run(scorer.backend.close())
