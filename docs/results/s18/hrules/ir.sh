#!/bin/bash
# ir.sh PICKLE PASSES TREE... : instructions per pass of the rules stage, per tree (cachegrind, passes 0 vs PASSES)
pickle=$1; passes=$2; shift 2
for t in "$@"; do
  for p in 0 $passes; do
    PYTHONHASHSEED=0 PYTHONPATH=$t valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
      /work/main/.venv/bin/python /work/main/docs/results/s18/hrules/rules_ir.py $pickle --passes $p 2>&1 | grep "I *refs" | tr -d ',' | awk -v t=$t -v p=$p '{print t, p, $NF}'
  done
done | awk -v P=$passes '{ if ($2==0) base[$1]=$3; else full[$1]=$3 } END { for (t in full) printf "%s: %.0f instructions per pass\n", t, (full[t]-base[t])/P }'
