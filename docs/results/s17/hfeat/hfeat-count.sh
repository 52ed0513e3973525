#!/usr/bin/env bash
# Instructions of the feature stage alone (every kind batch of the stream's batches, each transform once
# after a warm pass), by callgrind collecting only under functools.reduce: hfeat-count.sh TREE BATCH EVENTS OUT
set -euo pipefail
tree=$1 batch=$2 events=$3 out=$4
cd "$tree"
PYTHONPATH="$tree" valgrind --tool=callgrind --toggle-collect=functools_reduce --callgrind-out-file="$out.cg" \
  /work/main/.venv/bin/python /work/main/docs/results/s17/hfeat/hfeat-feat.py count --batch "$batch" \
  --warm 2000 --events "$events" > "$out.log" 2>&1
grep -h "kind batches" "$out.log"
callgrind_annotate "$out.cg" 2>/dev/null | grep "PROGRAM TOTALS"
