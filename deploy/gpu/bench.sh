#!/usr/bin/env bash
# The GPU-serving measurement of docs/gpu-serving.md in one go, on a GPU host:
#   deploy/gpu/bench.sh OUTDIR FEATURES.npz [STACK.tar.xz]
# STACK (optional): a tar.xz of unpacked wheels (site/...: nvForest and its RAPIDS libraries,
# treelite, nvidia-pytriton, tritonclient, msgspec) unpacked to /tmp/site first (a host
# without network; unpacked and repacked, the wheels fit one device call's 64 MiB).
# STAGES (default "inprocess gpu_vs_cpu transport scorers"; also "latency": batch 1 per model):
# which measurements to run. CPU_ENGINES (default treelite-cpp,onnxruntime): the CPU models
# served beside the GPU one and compared with it (gpu_vs_cpu, latency); GPU_INSTANCES (default:
# launch.py's, the shipped count); BREAKEVEN_BATCHES (gpu_vs_cpu; default 1,64,256,1024,4096,8192);
# TRANSPORT_ENGINES (transport stage; default the GPU engine; "routed": the production name);
# CPU_MODEL_THREADS, SMALL_REQUEST_ROWS: launch.py's --cpu-model-threads, --small-request-rows.
# LATENCY_ENGINES (latency stage; default the GPU and CPU engines). Stage "route": the scorer's
# FailoverBackend with every call in process (compiled trees) against every call to the production
# name, per kind and call size (route_bench.py; ROUTE_SIZES, ROUTE_ROUNDS, ROUTE_DURATION; serve
# CPU_ENGINES=routed). Stage "floor": gRPC round
# trips without a model (client_bench floor). Stage "native": batch 1 from Triton's C++ client,
# perf_analyzer (PERF_ANALYZER: the binary, default STACK's pa/perf_analyzer; LATENCY_ENGINES;
# NATIVE_CONCURRENCY, default 1,4; NATIVE_SHM, default none; deploy/gpu/perf_analyzer.py).
# MICRO_BATCH (scorers stage): records per scorer micro-batch (default 4,096); SCORER_TARGETS:
# the engines it runs, replacing the GPU engine plus SCORER_ENGINES.
# GPU_ENGINE (default nvforest; treelite for a dry run on a CPU-only host), BATCHES (transport),
# PORT_BASE (default 8000: HTTP, then gRPC and metrics on the next two ports), QUEUE_DELAY_US
# (the dynamic batcher's max_queue_delay_microseconds; default: production's 200),
# TRANSPORTS (transport stage; default grpc,shm,cudashm,cudashm-pinned,cudashm-gpu),
# SCORER_ENGINES (scorers stage, besides the GPU engine; default onnxruntime), SCORER_CLIENTS
# (default grpc; "grpc shm" also runs the scorer's shared-memory client).
# Starts tritonserver on deploy/gpu's repository (nvForest on the GPU, ONNX Runtime on the
# CPU), runs the stages, stops the server. Every stage's JSON and log land in OUTDIR.
set -u -o pipefail
out=${1:?OUTDIR}; feats=${2:?FEATURES.npz}; stack=${3:-}
stages=${STAGES:-inprocess gpu_vs_cpu transport scorers}
gpu=${GPU_ENGINE:-nvforest}; batches=${BATCHES:-1,1024,65536}
port=${PORT_BASE:-8000}; url=127.0.0.1:$((port + 1))
mkdir -p "$out"
. "$(dirname "$0")/stack_env.sh"
export PYTHONUNBUFFERED=1
nvidia-smi >"$out/nvidia-smi.txt" 2>&1
run() { local name=$1; shift; "$@" 2>&1 | tee "$out/$name.log"; }
if [[ " $stages " == *" inprocess "* ]]; then
  run inprocess python3 -m deploy.gpu.inprocess_bench --features "$feats" \
    --engines "$gpu",onnxruntime,nvforest-cpu --out "$out/inprocess.json"
fi
work=/tmp/triton-gpu
t0=$(date +%s)
cpu_engines=${CPU_ENGINES:-treelite-cpp,onnxruntime}
python3 deploy/gpu/launch.py serve --workdir "$work" --engines "$gpu,$cpu_engines" --large-engine "$gpu" \
  ${GPU_INSTANCES:+--gpu-instances "$GPU_INSTANCES"} --cpu-threads "$(nproc)" --timeout 300 \
  ${CPU_MODEL_THREADS:+--cpu-model-threads "$CPU_MODEL_THREADS"} ${SMALL_REQUEST_ROWS:+--small-request-rows "$SMALL_REQUEST_ROWS"} \
  ${QUEUE_DELAY_US:+--queue-delay-us "$QUEUE_DELAY_US"} \
  --http-port "$port" --grpc-port $((port + 1)) --metrics-port $((port + 2)) || {
  tail -c 20000 "$work/tritonserver.log" >"$out/tritonserver.log"; exit 1; }
echo "server ready after $(( $(date +%s) - t0 )) s"
bench() { python3 -m deploy.gpu.client_bench run --url "$url" --features "$feats" "$@"; }
if [[ " $stages " == *" gpu_vs_cpu "* ]]; then
  run gpu_vs_cpu bench --models "${MODELS:-netflow_classifier,edr_classifier,siem_classifier}" \
    --engines "$gpu,$cpu_engines" --transports grpc --concurrency 1 \
    --batches "${BREAKEVEN_BATCHES:-1,64,256,1024,4096,8192}" --out "$out/gpu_vs_cpu.json"
fi
if [[ " $stages " == *" transport "* ]]; then
  run transport bench --models netflow_classifier --engines "${TRANSPORT_ENGINES:-$gpu}" \
    --transports "${TRANSPORTS:-grpc,shm,cudashm,cudashm-pinned,cudashm-gpu}" \
    --concurrency 1,4,16 --batches "$batches" --out "$out/transport.json"
fi
if [[ " $stages " == *" native "* ]]; then  # batch 1 from a C++ client, real rows, every model
  pa=${PERF_ANALYZER:-/tmp/stack/pa/perf_analyzer}
  python3 -m deploy.gpu.perf_analyzer prepare --source "$pa" --out /tmp/perf_analyzer \
    --libs "$(python3 -c 'import importlib.util as u, pathlib; print(pathlib.Path(u.find_spec("pytriton").origin).parents[1])')/nvidia_pytriton.libs"
  run native python3 -m deploy.gpu.perf_analyzer run --perf-analyzer /tmp/perf_analyzer/perf_analyzer --url "$url" \
    --models netflow_classifier,edr_classifier,siem_classifier --engines "${LATENCY_ENGINES:-$gpu,$cpu_engines}" \
    --shared-memory "${NATIVE_SHM:-none}" --concurrency "${NATIVE_CONCURRENCY:-1,4}" --batches 1 \
    --interval-ms 2000 --features "$feats" --out "$out/native.json"
fi
if [[ " $stages " == *" floor "* ]]; then  # gRPC's own round trip, no model
  run floor python3 -m deploy.gpu.client_bench floor --url "$url" --duration 3
fi
if [[ " $stages " == *" route "* ]]; then  # the scorer's own client: a call in process or to Triton, by size
  run route python3 -m deploy.gpu.route_bench --url "$url" --features "$feats" \
    --sizes "${ROUTE_SIZES:-1,16,64,255,1024,4096}" --rounds "${ROUTE_ROUNDS:-3}" --duration "${ROUTE_DURATION:-0.4}" \
    --out "$out/route.json"
fi
if [[ " $stages " == *" latency "* ]]; then  # one row, one request in flight, every model
  run latency bench --models netflow_classifier,edr_classifier,siem_classifier --engines "${LATENCY_ENGINES:-$gpu,$cpu_engines}" \
    --transports grpc,grpc-raw --concurrency 1 --batches 1 --duration 3 --out "$out/latency.json"
fi
if [[ " $stages " == *" scorers "* ]]; then
  for engine in ${SCORER_TARGETS:-$gpu ${SCORER_ENGINES-onnxruntime}}; do
    for client in ${SCORER_CLIENTS:-grpc}; do  # grpc, shm: the scorer's shared-memory client
      flag=; [ "$client" = shm ] && flag=--shared-memory
      run "scorers_${engine}_$client" python3 -m deploy.gpu.scorers_bench --url "$url" --features "$feats" \
        --engine "$engine" --processes "${PROCESSES:-1,4,16}" --duration "${DURATION:-4}" --micro-batch "${MICRO_BATCH:-4096}" \
        $flag --out "$out/scorers_${engine}_$client.json"
    done
  done
fi
python3 deploy/gpu/launch.py stop --workdir "$work"
grep -v '^[|+]' "$work/tritonserver.log" | tail -c 20000 >"$out/tritonserver.log"
