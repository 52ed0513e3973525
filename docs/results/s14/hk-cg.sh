#!/bin/bash
# Instructions (callgrind Ir) of hk-kcost.py in a tree: two sizes, the difference per event cancels start-up.
#   hk-cg.sh TREE BOOTSTRAP TOPICS_JSON_FILE OUT_PREFIX
T=$(cat "$3")
for N in 15000 45000; do
  (cd "$1" && PYTHONPATH="$1" valgrind --tool=callgrind --callgrind-out-file="$4.$N.out" \
    /work/main/.venv/bin/python -P "$(dirname "$0")/hk-kcost.py" run "$2" "$T" $N > "$4.$N.json" 2> "$4.$N.err")
  echo "$N $(grep -h 'Collected' "$4.$N.err") $(cat "$4.$N.json")"
done
