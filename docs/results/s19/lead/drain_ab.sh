#!/usr/bin/env bash
# Same-phase drain A/B: the vectorized scorer of BEFORE_TREE (a git worktree with its natives built:
# scorer.bench.abtrees.build_native) and of this tree, alternated on one fresh broker, ROUNDS times each.
#   docs/results/s19/lead/drain_ab.sh BEFORE_TREE OUTDIR [ROUNDS]
set -u
BEFORE=$(realpath "${1:?BEFORE_TREE}"); OUT=$(realpath -m "${2:?OUTDIR}"); ROUNDS=${3:-3}; mkdir -p "$OUT"
cd "$(dirname "$0")/../../../.."
HERE=$PWD; PY=$HERE/.venv/bin/python
export SCORER_DATA_DIR=${SCORER_DATA_DIR:-$HERE/../shared/data} PATH=$HERE/.venv/bin:$PATH
deploy/local/kafka.sh restart > "$OUT/kafka.log" 2>&1
drain() { "$PY" -m scorer.cli bench --stream realistic --runners "$1" --events 300000 --repeat 1 --rate 0 --out "$2"; }
drain passthrough "$OUT/warmup.json" > "$OUT/warmup.log" 2>&1  # the broker's JVM warms up on the first drain
for i in $(seq "$ROUNDS"); do
  (cd "$BEFORE" && PYTHONPATH=$BEFORE drain scorer-vectorized "$OUT/before-$i.json") > "$OUT/before-$i.log" 2>&1
  drain scorer-vectorized "$OUT/after-$i.json" > "$OUT/after-$i.log" 2>&1
  drain passthrough "$OUT/passthrough-$i.json" > "$OUT/passthrough-$i.log" 2>&1
  echo "round $i: $(grep -h 'drain 300000' "$OUT/before-$i.log" | cut -c1-90) | $(grep -h 'drain 300000' "$OUT/after-$i.log" | cut -c22-90) | passthrough $(grep -h 'drain 300000' "$OUT/passthrough-$i.log" | cut -c22-90)"
done
deploy/local/kafka.sh stop >> "$OUT/kafka.log" 2>&1
