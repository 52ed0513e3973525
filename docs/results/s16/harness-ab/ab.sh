#!/usr/bin/env bash
# The drain's output counting: the old harness (a consumer reading every output) against the new
# (end offsets), alternated, same code otherwise, one fresh broker (docs/benchmarks.md section 39).
#   docs/results/s16/harness-ab/ab.sh OUTDIR   (harness_old.py: `git show 071a774:scorer/bench/harness.py`)
set -u
OUT=$(realpath -m "${1:?OUTDIR}"); mkdir -p "$OUT"
cd "$(dirname "$0")/../../../.."
export SCORER_DATA_DIR=${SCORER_DATA_DIR:-$PWD/../shared/data} PATH=$PWD/.venv/bin:$PATH
cp scorer/bench/harness.py /tmp/harness_new.py
(while true; do echo "$(date -u +%T) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 10; done) > "$OUT/load.txt" &
LOADPID=$!
deploy/local/kafka.sh restart > "$OUT/kafka.log" 2>&1
for round in 1 2; do for h in old new; do
  cp /tmp/harness_$h.py scorer/bench/harness.py
  echo "== $(date -u +%T) round $round harness $h"
  scorer bench --stream realistic --runners passthrough,scorer-compiled,scorer-vectorized --events 100000 \
    --repeat 2 --rate 0 --out "$OUT/$h-$round.json" > "$OUT/$h-$round.log" 2>&1
  grep -E "^(passthrough|scorer-)" "$OUT/$h-$round.log"
done; done
cp /tmp/harness_new.py scorer/bench/harness.py
kill $LOADPID
