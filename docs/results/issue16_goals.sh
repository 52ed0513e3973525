#!/usr/bin/env bash
# Issue 16's goals in one quiet run (docs/benchmarks.md sections 30, 34, 38, 39, 47: the same commands, in this order;
# from section 39 the vectorized engine, the service's default, beside the compiled one, and 300,000-event drains;
# from section 47 the latency rounds traced: the p99 goal read on every batch's own latency, not only a bucket bound;
# from section 48 a 50-record batch's CPU with cold caches beside warm ones; from section 60 an alerts-only drain).
#   docs/results/issue16_goals.sh OUTDIR   (~6 min on the 2-core VM; nothing else should run: tails and drains
#   move with the load, logged every 10 s to OUTDIR/load.txt; the broker is restarted fresh first)
set -u
OUT=$(realpath -m "${1:?OUTDIR}"); mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
export SCORER_DATA_DIR=${SCORER_DATA_DIR:-$PWD/../shared/data} PATH=$PWD/.venv/bin:$PATH
git rev-parse --short HEAD > "$OUT/commit.txt"
(while true; do echo "$(date -u +%T) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 10; done) > "$OUT/load.txt" &
LOADPID=$!
deploy/local/kafka.sh restart > "$OUT/kafka.log" 2>&1
run() { local name=$1; shift; echo "== $(date -u +%T) $name: $*"; "$@" > "$OUT/$name.log" 2>&1; echo "   rc=$? $(date -u +%T)"; }
# A throwaway drain first: the first drain on a freshly started broker runs while its JVM warms up
# (the passthrough's first drain of a run: 149-156k against 183-264k later; section 42).
run warmup scorer bench --stream realistic --runners passthrough --events 300000 --repeat 1 --rate 0 --out "$OUT/warmup.json"
run bench-realistic scorer bench --stream realistic --runners passthrough,scorer-compiled,scorer-vectorized,quix-app \
  --events 300000 --baseline-events 20000 --repeat 3 --rate 0 --out "$OUT/bench-realistic.json"
# From section 60: the service as deployed writes alerts only (no scores topic); the drain is then counted by the
# offsets the scorer's group commits. The passthrough still copies every record.
run bench-realistic-alerts scorer bench --stream realistic --runners passthrough,scorer-vectorized --outputs alerts \
  --events 300000 --repeat 3 --rate 0 --out "$OUT/bench-realistic-alerts.json"
run bench-capture scorer bench --stream capture --runners passthrough,scorer-compiled,scorer-vectorized --events 300000 \
  --repeat 3 --rate 0 --out "$OUT/bench-capture.json"
run latency-realistic python -m scorer.bench.latency --stream realistic --runners passthrough,scorer-compiled,scorer-vectorized \
  --rate 10000 --seconds 10 --rounds 3 --trace "$(mktemp -d)" --out "$OUT/latency-realistic.json"
for stream in realistic capture; do for engine in compiled vectorized; do
  run stages-$stream-$engine env SCORER_INFERENCE__IN_PROCESS_ENGINE=$engine python -m scorer.bench.stages --stream $stream \
    --batch 50 --batch 2048 --events 40000 --warm 16000 --out "$OUT/stages-$stream-$engine.json"
done; done
# From section 48: a 50-record batch with the caches as the pipeline finds them (a 32 MiB buffer written
# between batches, off the clocks) against warm ones, in one process run after run.
for evict in 0 32; do
  run stages-evict$evict env SCORER_INFERENCE__IN_PROCESS_ENGINE=vectorized python -m scorer.bench.stages --stream realistic \
    --batch 50 --events 20000 --warm 16000 --rounds 2 --evict-mib $evict --out "$OUT/stages-evict$evict.json"
done
mkdir -p "$OUT/prof"
run bench-profile env SCORER_BENCH_PROFILE="$OUT/prof" scorer bench --stream realistic --runners scorer-vectorized --events 200000 \
  --repeat 1 --rate 10000 --rate-seconds 10 --out "$OUT/bench-profile.json"
# From section 60: 1,500,000 events, read on the steady part (a quarter to three quarters of them): on the dev
# broker the first worker to join scores alone until the second's join is seen, a 300,000-event drain's whole length.
run processes-2core python -m scorer.bench.processes --runner scorer-vectorized --stream realistic --processes 1 --processes 2 \
  --events 1500000 --repeat 2 --out "$OUT/processes-2core.json"
gzip -9 -n "$OUT"/prof/*.txt  # py-spy's raw profiles: scorer.bench.profile_summary reads them gzipped
deploy/local/kafka.sh stop >> "$OUT/kafka.log" 2>&1
kill $LOADPID
echo "done $(date -u +%T)"
