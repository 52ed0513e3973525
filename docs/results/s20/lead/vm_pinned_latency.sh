#!/usr/bin/env bash
# Issue 16's latency goal on this 2-core VM with the runners on a core of their own: the broker, the load
# generator and the output reader on core 0; every runner process (the passthrough and the scorer alike)
# moved onto core 1 as it appears; then the same rounds unpinned, on the same fresh broker.
#   docs/results/s20/lead/vm_pinned_latency.sh OUTDIR [ROUNDS]
set -u
OUT=$(realpath -m "${1:?OUTDIR}"); ROUNDS=${2:-3}; mkdir -p "$OUT"
cd "$(dirname "$0")/../../../.."
export SCORER_DATA_DIR=${SCORER_DATA_DIR:-$PWD/../shared/data} PATH=$PWD/.venv/bin:$PATH
(while true; do echo "$(date -u +%T) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 10; done) > "$OUT/load.txt" &
LOADPID=$!
deploy/local/kafka.sh stop > "$OUT/kafka.log" 2>&1
taskset -c 0 deploy/local/kafka.sh restart >> "$OUT/kafka.log" 2>&1
lat() {  # NAME [taskset prefix...]
  local name=$1; shift
  "$@" python -m scorer.bench.latency --stream realistic --runners passthrough,scorer-vectorized --rate 10000 \
    --seconds 10 --rounds "$ROUNDS" --trace "$(mktemp -d)" --out "$OUT/$name.json" > "$OUT/$name.log" 2>&1
}
# A throwaway round first: the broker's JVM warms up.
ROUNDS=1 lat warmup taskset -c 0
(declare -A seen; while true; do
   for pid in $(pgrep -f 'scorer[.]cli.* run( |$)|scorer[.]bench[.](passthrough|baselines)'); do
     [ -n "${seen[$pid]:-}" ] && continue
     taskset -a -p -c 1 "$pid" >/dev/null 2>&1 && seen[$pid]=1 &&
       echo "$(date -u +%T.%N | cut -c1-12) pinned $pid to 1: $(tr '\0' ' ' </proc/$pid/cmdline | cut -c1-120)"
   done; sleep 0.05
 done) > "$OUT/pins.log" 2>&1 &
PINNER=$!
lat pinned taskset -c 0
kill $PINNER
lat shared
kill $LOADPID
deploy/local/kafka.sh stop >> "$OUT/kafka.log" 2>&1
