#!/bin/bash
# kindcg.sh KIND (edr|siem|netflow), from the repo root, after cgfun.py wrote /tmp/s21/cgf/records.pickle and
# /tmp/s21/k_KIND.pickle was cut from it (that kind's records only): instructions per event of one kind's records (warm 4000, measure 3000, batch 2048) and top functions
k=$1; cd "$(dirname "$0")/../../../.."
for n in 3000 0; do
  PYTHONPATH=/work/main PYTHONHASHSEED=0 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 SCORER_INFERENCE__IN_PROCESS_ENGINE=vectorized \
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/tmp/s21/k_$k-$n.out .venv/bin/python -P scorer/bench/stages_ab.py --child /tmp/s21/k_$k.pickle --warm 4000 --batch 2048 --measure $n --no-check > /tmp/s21/k_$k-$n.json 2>/tmp/s21/k_$k-$n.err
done
cg_diff /tmp/s21/k_$k-0.out /tmp/s21/k_$k-3000.out > /tmp/s21/k_$k-diff.out 2>/dev/null
cg_annotate /tmp/s21/k_$k-diff.out 2>/dev/null | sed -n 16,60p | cut -c1-150 > /tmp/s21/k_$k-top.txt
