#!/bin/bash
# stages_alt.sh N: scorer.bench.stages on the base and after trees, alternated N times (batch 50 and 2048)
n=${1:-4}
export SCORER_INFERENCE__IN_PROCESS_ENGINE=vectorized SCORER_DATA_DIR=/work/shared/data
for i in $(seq $n); do
  for side in base after; do
    tree=/tmp/hdec-$side
    echo "== $side $i load $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd $tree && PYTHONPATH=$tree /work/main/.venv/bin/python -P -m scorer.bench.stages --stream realistic --batch 50 --batch 2048 --events 20000 --warm 16000 --rounds 1 2>&1 | grep "^batch")
  done
done
