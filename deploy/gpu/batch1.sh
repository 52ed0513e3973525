#!/usr/bin/env bash
# Batch-1 latency of the GPU host's production name, server configurations side by side in
# one call (docs/gpu-serving.md, runs 12 and 13):
#   deploy/gpu/batch1.sh OUTDIR FEATURES.npz [STACK.tar.xz]
# STACK (optional): as bench.sh's (unpacked to /tmp/stack; its pa/perf_analyzer is the client).
# VARIANTS (default "on/2 off/2 on/2 off/2": interleaved, so a slow minute of the machine lands
# on both): one server each, in order, each token BATCHING/INSTANCES[/SCORER][@CPUS]: the router's
# dynamic batcher on or off (launch.py --cpu-batching), its CPU instances (--cpu-instances),
# what scores small requests (compiled: the tl2cgen-compiled trees, the default, -O3; compiled-Os:
# the same built with -Os, launch.py --compiled-optimize; gtil: Treelite's GTIL; launch.py --compiled), and optionally a CPU list that tritonserver's
# threads (not the python stubs) and the client are both confined to (taskset), a diagnostic
# of cross-core wake-ups. INPROCESS=1: first, compiled_bench (GTIL against the compiled trees
# in one process, 1/4/16/64/255 rows) into OUTDIR/inprocess.json. Per variant: perf_analyzer (C++ client, gRPC, real rows, one
# row per request) on the three kinds at NATIVE_CONCURRENCY (default 1,4,16) requests in
# flight, windows of INTERVAL_MS (default 1000); then the Python ServerLive floor (no model).
# Once per call: loopback_floor (a bare TCP round trip between two processes: unpinned, both
# on one core, on two cores), the floor under any gRPC number on this machine.
# GPU_ENGINE (default nvforest; treelite for a dry run on a CPU-only host) is what the router
# forwards large requests to, on GPU_INSTANCES (default: launch.py's, the shipped count).
set -u -o pipefail
out=${1:?OUTDIR}; feats=${2:?FEATURES.npz}; stack=${3:-}
gpu=${GPU_ENGINE:-nvforest}; port=${PORT_BASE:-8000}; url=127.0.0.1:$((port + 1))
mkdir -p "$out"
. "$(dirname "$0")/stack_env.sh"
export PYTHONUNBUFFERED=1
pa=${PERF_ANALYZER:-/tmp/stack/pa/perf_analyzer}
libs="$(python3 -c 'import importlib.util as u, pathlib; print(pathlib.Path(u.find_spec("pytriton").origin).parents[1])')/nvidia_pytriton.libs"
python3 -m deploy.gpu.perf_analyzer prepare --source "$pa" --out /tmp/perf_analyzer --libs "$libs" >/dev/null || exit 1
${CXX:-c++} -O2 -o /tmp/loopback_floor deploy/gpu/loopback_floor.cc || exit 1
cpus=$(nproc)
for pin in "" "0 0" "0 $((cpus > 2 ? 2 : 1))"; do /tmp/loopback_floor 20000 512 $pin; done | tee "$out/loopback.jsonl"
if [ "${INPROCESS:-0}" = 1 ]; then
  python3 -m deploy.gpu.compiled_bench --features "$feats" --batches 1,4,16,64,255 --calls "${INPROCESS_CALLS:-5000}" \
    --out "$out/inprocess.json" 2>"$out/inprocess.log" || { tail -c 3000 "$out/inprocess.log"; exit 1; }
fi
work=/tmp/triton-batch1
i=0
for variant in ${VARIANTS:-on/2 off/2 on/2 off/2}; do
  i=$((i + 1))
  spec=${variant%%@*}; cpuset=; [[ $variant == *@* ]] && cpuset=${variant#*@}
  IFS=/ read -r batching instances scorer <<<"$spec"; scorer=${scorer:-compiled}
  case $scorer in compiled) compiled=on opt=O3 ;; compiled-Os) compiled=on opt=Os ;; gtil) compiled=off opt=O3 ;;
    *) echo "scorer: compiled, compiled-Os or gtil, not $scorer"; exit 1 ;; esac
  name="$i-batching-${batching}-instances-${instances}-${scorer}${cpuset:+-cpus-$cpuset}"
  pin=(); [ -n "$cpuset" ] && pin=(taskset -c "$cpuset")
  t0=$(date +%s.%N)
  python3 deploy/gpu/launch.py serve --workdir "$work" --engines "$gpu,routed" --large-engine "$gpu" \
    ${GPU_INSTANCES:+--gpu-instances "$GPU_INSTANCES"} --cpu-batching "$batching" --cpu-instances "$instances" --compiled "$compiled" --compiled-optimize "$opt" \
    --cpu-threads 1 --timeout 300 --http-port "$port" --grpc-port $((port + 1)) --metrics-port $((port + 2)) \
    >"$out/serve_$name.log" 2>&1 || { tail -c 4000 "$work/tritonserver.log"; exit 1; }
  if [ -n "$cpuset" ]; then  # every thread of the server process; its python stubs stay free
    taskset -a -p -c "$cpuset" "$(grep -o 'tritonserver pid [0-9]*' "$out/serve_$name.log" | cut -d' ' -f3)" >/dev/null || exit 1
  fi
  echo "== $name: server ready in $(python3 -c "import time; print(round(time.time() - $t0, 1))") s, load $(cut -d' ' -f1-3 /proc/loadavg)"
  "${pin[@]}" python3 -m deploy.gpu.perf_analyzer run --perf-analyzer /tmp/perf_analyzer/perf_analyzer --url "$url" \
    --models netflow_classifier,edr_classifier,siem_classifier --engines routed --shared-memory none \
    --concurrency "${NATIVE_CONCURRENCY:-1,4,16}" --batches 1 --interval-ms "${INTERVAL_MS:-1000}" \
    --features "$feats" --out "$out/native_$name.json" >"$out/native_$name.log" 2>&1
  python3 -c "
import json
for p in json.load(open('$out/native_$name.json'))['perf_analyzer']:
  print('$name', p['model'][:4], p['in_flight'], 'rps', p.get('rows_per_s'), 'p50', p.get('p50_us'), 'p99', p.get('p99_us'),
      'queue', p.get('server_queue_us'), 'infer', p.get('server_compute_infer_us'), 'output', p.get('server_compute_output_us'),
      'net', p.get('network_us'), (p.get('error') or '')[:100])"
  "${pin[@]}" python3 -m deploy.gpu.client_bench floor --url "$url" --duration 3 2>&1 | tee "$out/floor_$name.log" | tail -2
  python3 deploy/gpu/launch.py stop --workdir "$work" >/dev/null
  grep -v '^[|+]' "$work/tritonserver.log" | tail -c 4000 >"$out/tritonserver_$name.log"
done
