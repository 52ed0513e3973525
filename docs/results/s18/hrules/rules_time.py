"""Hot CPU of the rules stage alone on captured lists (rules_hot.py --save): best of R passes,
after 2 warm ones, in the tree on PYTHONPATH. A second opinion beside cg.sh's counts.

    PYTHONPATH=<tree> python docs/results/s18/hrules/rules_time.py BATCHES.pickle [--rounds 9]
"""

from __future__ import annotations

import argparse
import pickle
import time
from collections import defaultdict

from scorer.config import Settings
from scorer.pipeline.batch import Batch
from scorer.pipeline.rules import apply_rules
from scorer.rules.annotate import RuleStage
from scorer.service.gctune import tune_gc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("batches")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    r = Settings().rules
    stage = RuleStage.load(r.repository, r.pack, r.version)
    with open(args.batches, "rb") as fh:
        batches = pickle.load(fh)
    tune_gc()
    times = []
    for p in range(2 + args.rounds):
        t0 = time.process_time()
        for items in batches:
            b = Batch.__new__(Batch)
            b.failures, b.rule_hits = [], defaultdict(int)
            apply_rules(stage, items, b)
        if p >= 2:
            times.append(time.process_time() - t0)
    best, median = min(times), sorted(times)[len(times) // 2]
    print(f"{len(batches)} lists: best {best / len(batches) * 1e6:.1f} us a list, median {median / len(batches) * 1e6:.1f}")


if __name__ == "__main__":
    main()
