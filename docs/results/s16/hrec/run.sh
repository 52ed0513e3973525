#!/bin/sh
# Section 40's measurements: the commit before (172ef02) and the one-object InputRecord (6942636),
# each in a git worktree with its own native modules; the third tree is 6942636 with
# InputRecord's gc=False taken out (what the collector's tracking alone costs).
set -e
cd "$(dirname "$0")/../../../.."
PY=$PWD/.venv/bin/python R=docs/results/s16/hrec
git worktree add --detach /tmp/hrec_base 172ef02
git worktree add --detach /tmp/hrec_after 6942636
git worktree add --detach /tmp/hrec_nogc 6942636
sed -i 's/class InputRecord(msgspec.Struct, frozen=True, gc=False):/class InputRecord(msgspec.Struct, frozen=True):/' \
    /tmp/hrec_nogc/scorer/pipeline/records.py
$PY -c "from pathlib import Path; from scorer.bench.abtrees import build_native
for t in ('/tmp/hrec_base', '/tmp/hrec_after', '/tmp/hrec_nogc'): build_native(Path(t))"
for b in 2048 50; do
    (cd /tmp/hrec_after && $PY $OLDPWD/$R/inputs_ab.py --before-tree /tmp/hrec_base --after-tree /tmp/hrec_after \
        --stream realistic --batch $b --rounds 5 --passes 10) > $R/inputs-ab-$b.txt
    (cd /tmp/hrec_after && $PY $OLDPWD/$R/inputs_ab.py --before-tree /tmp/hrec_base --after-tree /tmp/hrec_after \
        --stream realistic --batch $b --valgrind 49152) > $R/inputs-valgrind-$b.txt
    (cd /tmp/hrec_after && $PY $OLDPWD/$R/inputs_ab.py --before-tree /tmp/hrec_nogc --after-tree /tmp/hrec_after \
        --stream realistic --batch $b --valgrind 49152) \
        | sed 's/^before/one struct, gc tracked (before-tree: 6942636 less gc=False)/' > $R/inputs-valgrind-gc-$b.txt
    (cd /tmp/hrec_after && $PY -m scorer.bench.stages_ab --before-tree /tmp/hrec_base --after-tree /tmp/hrec_after \
        --stream realistic --data-dir "$OLDPWD/../shared/data" --batch $b --rounds 4) > $R/stages-ab-$b.txt
done
(cd /tmp/hrec_after && $PY -m scorer.bench.stages_ab --before-tree /tmp/hrec_base --after-tree /tmp/hrec_after \
    --stream realistic --data-dir "$OLDPWD/../shared/data" --batch 2048 --rounds 1 --valgrind-events 3000) \
    > $R/stages-ab-valgrind-2048.txt
