#!/bin/bash
# Drains of two source trees alternated (scorer-vectorized only, 300,000 events each), the broker on this machine:
#   BASE=/tmp/base AFTER=/work/main docs/results/s26/drain_ab.sh capture 3 OUTDIR
# Each side runs `scorer bench` from its own tree (cwd and PYTHONPATH); its scorer/native must be built there
# (python -c 'from scorer.bench.abtrees import build_native; build_native(Path(TREE))').
STREAM=${1:-capture}; ROUNDS=${2:-3}; OUT=${3:-/tmp/drain_ab}; BASE=${BASE:?BASE tree}; AFTER=${AFTER:?AFTER tree}
mkdir -p $OUT
for r in $(seq 1 $ROUNDS); do
  for side in base after; do
    tree=$AFTER; [ $side = base ] && tree=$BASE
    (cd $tree && PYTHONPATH=$tree SCORER_DATA_DIR=/work/shared/data /work/main/.venv/bin/python -P -m scorer.cli bench --stream $STREAM \
      --runners scorer-vectorized --events 300000 --repeat 1 --rate 0 --out $OUT/$STREAM-$side-$r.json > $OUT/$STREAM-$side-$r.log 2>&1)
    echo "$STREAM $side round $r: $(grep -E 'drain' $OUT/$STREAM-$side-$r.log | tail -1)"
  done
done
