#!/usr/bin/env bash
# Session 25: the realistic drain with alerts only (the service's default outputs) beside the score-record
# drain, and the processes bench both ways. docs/results/s25/lead/alerts_only.sh OUTDIR (~6 min, quiet box)
set -u
OUT=$(realpath -m "${1:?OUTDIR}"); mkdir -p "$OUT"
cd "$(dirname "$0")/../../../.."
export SCORER_DATA_DIR=${SCORER_DATA_DIR:-$PWD/../shared/data} PATH=$PWD/.venv/bin:$PATH
git rev-parse --short HEAD > "$OUT/commit.txt"
(while true; do echo "$(date -u +%T) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 10; done) > "$OUT/load.txt" &
LOADPID=$!
deploy/local/kafka.sh restart > "$OUT/kafka.log" 2>&1
run() { local name=$1; shift; echo "== $(date -u +%T) $name: $*"; "$@" > "$OUT/$name.log" 2>&1; echo "   rc=$? $(date -u +%T)"; }
run warmup scorer bench --stream realistic --runners passthrough --events 300000 --repeat 1 --rate 0 --out "$OUT/warmup.json"
for round in 1 2; do
  run realistic-alerts-$round scorer bench --stream realistic --runners passthrough,scorer-vectorized --outputs alerts \
    --events 300000 --repeat 2 --rate 0 --out "$OUT/realistic-alerts-$round.json"
  run realistic-scores-$round scorer bench --stream realistic --runners passthrough,scorer-vectorized \
    --events 300000 --repeat 2 --rate 0 --out "$OUT/realistic-scores-$round.json"
done
for outputs in alerts scores; do
  run processes-$outputs python -m scorer.bench.processes --runner scorer-vectorized --stream realistic --outputs $outputs \
    --processes 1 --processes 2 --events 300000 --repeat 2 --out "$OUT/processes-$outputs.json"
done
deploy/local/kafka.sh stop >> "$OUT/kafka.log" 2>&1
kill $LOADPID
echo "done $(date -u +%T)"
