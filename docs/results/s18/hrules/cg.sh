#!/bin/bash
# cg.sh PICKLE PASSES TREE OUT: instructions per pass of the rules stage in TREE (callgrind, the
# instrumentation on only for the PASSES measured passes; the profile left in OUT.1). cgtoggle.c built
# first into /tmp/hrules_cg: gcc -shared -fPIC -O2 -I<python include> cgtoggle.c -o /tmp/hrules_cg/cgtoggle$(EXT_SUFFIX).
pickle=$1; passes=$2; t=$3; out=$4
cd /work/main
PYTHONHASHSEED=0 PYTHONPATH=$t valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$out \
  /work/main/.venv/bin/python /work/main/docs/results/s18/hrules/rules_cg.py $pickle --passes $passes >/dev/null 2>&1
total=$(callgrind_annotate $out.1 2>/dev/null | grep "PROGRAM TOTALS" | awk '{gsub(",", "", $1); print $1}')
echo "$t $(basename $pickle): $((total / passes)) instructions per pass"
