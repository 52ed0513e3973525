#!/bin/sh
# Section 41: score records from a batch's columns. before = 6942636 (the commit this work started
# from), after = 3eba372 (the change); both as git worktrees; stages_ab from 9987b41 (score_records
# inside the clock), run from /work/main. 2-core box shared with other runs: read the A/B ratios.
set -e
git worktree add --detach /tmp/hscore_base 6942636
git worktree add --detach /tmp/hscore_after 3eba372
AB=".venv/bin/python -m scorer.bench.stages_ab --before-tree /tmp/hscore_base --after-tree /tmp/hscore_after --stream realistic"
R=docs/results/s16/hscore
$AB --batch 2048 --rounds 3 --out $R/stages-ab-2048.json > $R/stages-ab-2048.txt 2>&1
$AB --batch 50 --rounds 5 --out $R/stages-ab-50.json > $R/stages-ab-50.txt 2>&1
$AB --batch 2048 --rounds 1 --valgrind-events 3000 --out $R/valgrind-2048.json > $R/valgrind-2048.txt 2>&1
$AB --batch 2048 --rounds 5 --out $R/stages-ab-2048-r5.json > $R/stages-ab-2048-r5.txt 2>&1
$AB --batch 50 --rounds 1 --valgrind-events 3000 --out $R/valgrind-50.json > $R/valgrind-50.txt 2>&1
# The path alone, reference against C, in one process (after's tree).
.venv/bin/python $R/records_ab.py --stream realistic --batch 2048 --rounds 7 > $R/records-ab-2048.txt
.venv/bin/python $R/records_ab.py --stream realistic --batch 50 --rounds 7 > $R/records-ab-50.txt
