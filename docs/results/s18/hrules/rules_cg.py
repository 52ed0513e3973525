"""Instructions of the rules stage alone, counted in one run: ``rules_ir.py``'s passes, with
callgrind's instrumentation on only around the measured passes (``cgtoggle``, a two-function
extension over valgrind/callgrind.h: cgtoggle.c here). cg.sh runs it and prints Ir per pass.

    valgrind --tool=callgrind --instr-atstart=no python rules_cg.py BATCHES.pickle --passes 2
"""

from __future__ import annotations

import argparse
import pickle
import sys
from collections import defaultdict

from scorer.config import Settings
from scorer.pipeline.batch import Batch
from scorer.pipeline.rules import apply_rules
from scorer.rules.annotate import RuleStage
from scorer.service.gctune import tune_gc

sys.path.insert(0, "/tmp/hrules_cg")
import cgtoggle  # noqa: E402


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
    for p in range(args.warm + args.passes):
        if p == args.warm:
            cgtoggle.start()
        for items in batches:
            b = Batch.__new__(Batch)
            b.failures, b.rule_hits = [], defaultdict(int)
            apply_rules(stage, items, b)
    cgtoggle.stop()


if __name__ == "__main__":
    main()
