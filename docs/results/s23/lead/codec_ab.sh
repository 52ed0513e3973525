#!/usr/bin/env bash
# The schema encoders A/B at a light load: `scorer bench` at 10,000 events/s (10 s, passthrough and the
# vectorized scorer) from a tree without them (OLD) and this one, alternated ROUNDS times on one broker.
#   docs/results/s23/lead/codec_ab.sh OLD_TREE OUTDIR [ROUNDS]   (from the repo root; OLD_TREE with natives built)
set -u
OLD=$1; OUT=$2; ROUNDS=${3:-2}; mkdir -p "$OUT"
export SCORER_DATA_DIR=${SCORER_DATA_DIR:-$PWD/../shared/data}
for r in $(seq 1 "$ROUNDS"); do
  for side in old new; do
    tree=$([ $side = old ] && echo "$OLD" || echo "$PWD")
    (cd "$tree" && PYTHONPATH="$tree" /work/main/.venv/bin/python -m scorer.cli bench --stream realistic \
      --runners passthrough,scorer-vectorized --events 120000 --repeat 1 --rate 10000 --rate-seconds 10 \
      --out "$OUT/$side-$r.json" > "$OUT/$side-$r.log" 2>&1)
    grep " rate " "$OUT/$side-$r.log" | sed "s/^/$side round $r: /"
  done
done
