"""Instructions of the rules stage alone, under valgrind: the batches ``rules_hot.py --save``
wrote, through ``apply_rules`` on a freshly loaded pack, ``--warm`` passes then ``--passes``
more. Run twice (``--passes 0`` and ``--passes K``) under ``valgrind --tool=cachegrind``; the
difference over K passes is the stage's instructions per pass (ir.sh does it).

    python docs/results/s18/hrules/rules_ir.py BATCHES.pickle --passes 2
"""

from __future__ import annotations

import argparse
import pickle
from collections import defaultdict

from scorer.config import Settings
from scorer.pipeline.batch import Batch
from scorer.pipeline.rules import apply_rules
from scorer.rules.annotate import RuleStage
from scorer.service.gctune import tune_gc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("batches")
    parser.add_argument("--warm", type=int, default=2)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    r = Settings().rules
    stage = RuleStage.load(r.repository, r.pack, r.version)
    with open(args.batches, "rb") as fh:
        batches = pickle.load(fh)
    tune_gc()  # as the service does once started
    for _ in range(args.warm + args.passes):
        for items in batches:
            b = Batch.__new__(Batch)
            b.failures, b.rule_hits = [], defaultdict(int)
            apply_rules(stage, items, b)


if __name__ == "__main__":
    main()
