#!/usr/bin/env bash
# Issue 16, items 3 and 5, on the lent 16-core device machine in one call: a Kafka broker on it,
# the scorer and its baselines draining the realistic and the capture stream, the p99 at 10,000
# events/s against the passthrough's, and `--processes N` at several N (docs/benchmarks.md, 29).
#   deploy/pipeline_host/study.sh OUTDIR [CARRY.tar.xz [HEAD.tar.xz]]   (defaults var/pipeline_host/carry.tar.xz
#   and head.tar.xz, made by `python -m deploy.pipeline_host.carry build` and `... carry head`; the device
#   call carries both). With HEAD.tar.xz the scorer/ measured is that commit's, its C extensions built
#   there (the working tree a call sends holds other sessions' uncommitted edits); "" : the tree as sent.
# PARTS (default "drain capture latency processes") picks the parts (PROC_REPEAT: drains per worker count); the sizes and each part's
# time box are variables below. A part cut by its box loses its JSON, not the others': every
# part writes OUTDIR/<part>.json as it ends and appends its output to OUTDIR/study.log; host.txt
# and logs.tgz (the runners' logs, the broker's) make seven files, of the eight a call returns.
# CARRY_SITE=0 uses the Python's own packages instead of the carried cp312 ones (a dry run here).
# SCORER_CPUS=0,1 gives the runners those cores alone: the broker and the benches run on the
# others, and every runner process (`scorer.cli ... run`: a worker, the supervisor; the passthrough;
# the per-event baselines) is moved onto SCORER_CPUS as soon as it appears (the benches start them;
# pins.log says which, when). DRAIN_RUNNERS, CAPTURE_RUNNERS, LAT_RUNNERS: the benches' runners.
# BEFORE=BEFORE.tar.xz (a second `carry head`, of the code before a change) or BEFORE=FILE.patch (applied to
# HEAD.tar.xz's scorer/: `git diff <head> <before> -- scorer`, smaller to carry) adds BEFORE_RUNNER (default
# scorer-vectorized) from that tree to the latency rounds (scorer.bench.latency --before-tree), and the
# latency part traces every batch (--trace; its tail reports go to study.log).
# Where the tree and the carry together pass a call's 64 MiB (the tree alone is ~31 MiB now): split the
# carry (`split -b 21M -d carry.tar.xz DIR/carry.part.` into two folders .git/info/exclude or var/ ignores),
# copy the first part to the machine's /tmp in one call, and in the very next call (a machine idle 30 s is
# given back) join it with the second there and pass the joined file as CARRY (docs/benchmarks.md, 62).
set -u -o pipefail
out=${1:?OUTDIR}; carry=${2:-var/pipeline_host/carry.tar.xz}; head=${3-var/pipeline_host/head.tar.xz}
c=${CARRY_DIR:-/tmp/pipeline-carry}; work=${STUDY_WORK:-/tmp/pipeline-study}
PARTS=${PARTS:-drain capture latency processes}
DRAIN_EVENTS=${DRAIN_EVENTS:-200000}; BASELINE_EVENTS=${BASELINE_EVENTS:-20000}; REPEAT=${REPEAT:-3}
LAT_SECONDS=${LAT_SECONDS:-10}; LAT_ROUNDS=${LAT_ROUNDS:-3}
PROC_EVENTS=${PROC_EVENTS:-1000000}; PROC_WORKERS=${PROC_WORKERS:-1 4 8 16}; PROC_RUNNER=${PROC_RUNNER:-scorer-vectorized}
DRAIN_RUNNERS=${DRAIN_RUNNERS:-passthrough,scorer-compiled,scorer-vectorized,quix-app}
CAPTURE_RUNNERS=${CAPTURE_RUNNERS:-passthrough,scorer-compiled,scorer-vectorized}
LAT_RUNNERS=${LAT_RUNNERS:-passthrough,scorer-compiled,scorer-vectorized}
PY=${PY:-python3}; port=${KAFKA_PORT:-9092}; boot=127.0.0.1:$port
mkdir -p "$out" "$work/tmp" || exit 1
export TMPDIR=$work/tmp  # the benches' runner logs, packed into OUTDIR/logs.tgz at the end
# Unpacked once per machine (a warm machine keeps /tmp between calls).
if [ ! -f "$c/.unpacked" ] || [ "$(cat "$c/.unpacked")" != "$(stat -c %s-%Y "$carry")" ]; then
  rm -rf "$c" && mkdir -p "$c" && tar -C "$c" -xJf "$carry" || exit 1
  stat -c %s-%Y "$carry" >"$c/.unpacked"
fi
if [ "${CARRY_SITE:-1}" = 1 ]; then
  export PYTHONPATH=$c/site:$PWD
  if [ -n "$head" ]; then
    rm -rf scorer "$c/head" && mkdir -p "$c/head" && tar -C "$c/head" -xJf "$head" && cp -a "$c/head/scorer" . || exit 1
    echo "scorer/ of HEAD $(cat "$c/head/REVISION"), its extensions built here:"
    "$PY" -c "import sys; from pathlib import Path; from deploy.gpu.stack import build_native
print([p.name for p in build_native(sys.executable, Path('scorer/native'), Path('.'), '$c/head/include')])" || exit 1
  else
    cp "$c"/native/*.so scorer/native/ || exit 1
  fi
fi
lat_extra=()
if [ -n "${BEFORE:-}" ]; then
  rm -rf "$c/before" && mkdir -p "$c/before" || exit 1
  if [ "${BEFORE%.patch}" != "$BEFORE" ]; then
    cp -a "$c/head/scorer" "$c/head/include" "$c/before/" && echo "HEAD + $BEFORE" >"$c/before/REVISION" &&
      (cd "$c/before" && { git apply "$OLDPWD/$BEFORE" 2>/dev/null || patch -s -p1 <"$OLDPWD/$BEFORE"; }) || exit 1
    find "$c/before/scorer/native" -name '*.so' -delete
  else
    tar -C "$c/before" -xJf "$BEFORE" || exit 1
  fi
  echo "before: scorer/ of $(cat "$c/before/REVISION"), its extensions built here:"
  (cd "$c/before" && "$PY" -c "import sys; from pathlib import Path; from deploy.gpu.stack import build_native
print([p.name for p in build_native(sys.executable, Path('scorer/native'), Path('.'), '$c/before/include')])") || exit 1
  lat_extra=(--before-tree "$c/before" --before-runner "${BEFORE_RUNNER:-scorer-vectorized}" --trace "$work/trace")
fi
# LAT_TRACE=1 traces the latency rounds without a before-tree too (exact p99s, not bucket bounds).
if [ -n "${LAT_TRACE:-}" ] && [ ${#lat_extra[@]} -eq 0 ]; then lat_extra=(--trace "$work/trace"); fi
# The broker: kafka.sh's (2 network, 4 I/O threads: sized for the 2-core VM) with twice the threads,
# so that 16 consumers and the load generator do not queue behind the broker's own pools; a 1 GiB heap.
export PYTHONUNBUFFERED=1 SCORER_DATA_DIR=$c/data JAVA=$c/jre/bin/java KAFKA_CACHE=$c/kafka KAFKA_CDS=0 \
  KAFKA_DATA_DIR=${KAFKA_DATA_DIR:-/tmp/pipeline-kafka} KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms1g -Xmx1g} \
  KAFKA_EXTRA_PROPS=${KAFKA_EXTRA_PROPS-$'num.network.threads=4\nnum.io.threads=8'}
{ date -u; nproc; grep -m1 'model name' /proc/cpuinfo; lscpu | grep -E '^(Thread|Core|Socket|CPU max MHz|L2|L3)'
  free -g | sed -n 2p; uptime
  nvidia-smi --query-gpu=name --format=csv,noheader 2>&1 | head -1; "$PY" --version; "$JAVA" -version 2>&1 | head -1
  { command -v "${CC:-cc}" && "${CC:-cc}" --version | head -1; } || echo "no C compiler: the compiled engine falls back"
  "$PY" -c "import scorer.cli, aiokafka, quixstreams, tl2cgen, treelite, onnxruntime, numpy
print('imports ok: tl2cgen', tl2cgen.__version__, 'onnxruntime', onnxruntime.__version__, 'numpy', numpy.__version__)"
} 2>&1 | tee "$out/host.txt"
pin=()
if [ -n "${SCORER_CPUS:-}" ]; then
  others=$("$PY" -c "import os; s={int(c) for c in '$SCORER_CPUS'.split(',')}; print(','.join(str(c) for c in sorted(os.sched_getaffinity(0)) if c not in s))")
  pin=(taskset -c "$others")
  echo "scorer processes on cores $SCORER_CPUS; the broker and the benches on $others" | tee -a "$out/host.txt"
  (declare -A seen; while true; do
     for pid in $(pgrep -f 'scorer[.]cli.* run( |$)|scorer[.]bench[.](passthrough|baselines)'); do
       [ -n "${seen[$pid]:-}" ] && continue
       taskset -a -p -c "$SCORER_CPUS" "$pid" >/dev/null 2>&1 && seen[$pid]=1 &&
         echo "$(date -u +%T.%N | cut -c1-12) pinned $pid to $SCORER_CPUS: $(tr '\0' ' ' </proc/$pid/cmdline | cut -c1-120)"
     done; sleep 0.05
   done) >"$out/pins.log" 2>&1 &
  pinner=$!
fi
"${pin[@]}" deploy/local/kafka.sh start 2>&1 | tail -2 || { tail -30 "$KAFKA_DATA_DIR"/kafka.out; exit 1; }

part() {  # NAME BOX_SECONDS COMMAND...: its output appended to OUTDIR/study.log, a digest printed
  local name=$1 box=$2 rc; shift 2
  echo "== $name $(date -u +%T) (box ${box}s): $*" | tee -a "$out/study.log"
  "${pin[@]}" timeout "$box" "$@" >"$work/$name.log" 2>&1; rc=$?
  cat "$work/$name.log" >>"$out/study.log"; echo "== $name exit $rc $(date -u +%T)" | tee -a "$out/study.log"
  grep -E 'drain|achieved|added p99|processes:|start-up|host CPU|median|/passthrough|best_baseline|FAILED|Error' \
    "$work/$name.log" | grep -v retrying | cut -c1-220 | tail -40
}
for p in $PARTS; do
  case $p in
    drain) part drain "${T_DRAIN:-200}" "$PY" -m scorer.cli bench --bootstrap "$boot" --stream realistic \
      --runners "$DRAIN_RUNNERS" --rate 0 --events "$DRAIN_EVENTS" \
      --baseline-events "$BASELINE_EVENTS" --repeat "$REPEAT" --out "$out/drain.json" ;;
    capture) part capture "${T_CAPTURE:-100}" "$PY" -m scorer.cli bench --bootstrap "$boot" --stream capture \
      --runners "$CAPTURE_RUNNERS" --rate 0 --events "$DRAIN_EVENTS" \
      --repeat "$REPEAT" --out "$out/capture.json" ;;
    latency) part latency "${T_LATENCY:-150}" "$PY" -m scorer.bench.latency --bootstrap "$boot" --stream realistic \
      --runners "$LAT_RUNNERS" --rate 10000 --seconds "$LAT_SECONDS" --rounds "$LAT_ROUNDS" \
      "${lat_extra[@]}" --out "$out/latency.json" ;;
    processes) part processes "${T_PROCESSES:-300}" "$PY" -m scorer.bench.processes --bootstrap "$boot" \
      --runner "$PROC_RUNNER" --stream realistic $(printf -- '--processes %s ' $PROC_WORKERS) \
      --events "$PROC_EVENTS" --repeat "${PROC_REPEAT:-1}" --partitions 16 --out "$out/processes.json" ;;
  esac
done
deploy/local/kafka.sh stop 2>&1 | tail -1
[ -n "${pinner:-}" ] && kill "$pinner" 2>/dev/null
tail -c 2000000 "$KAFKA_DATA_DIR/server.log" >"$work/tmp/kafka-server.log" 2>/dev/null
tar -C "$work" -czf "$out/logs.tgz" tmp; date -u; ls -la "$out"
