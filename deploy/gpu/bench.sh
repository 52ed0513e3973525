#!/usr/bin/env bash
# The GPU-serving measurement of docs/gpu-serving.md in one go, on a GPU host:
#   deploy/gpu/bench.sh OUTDIR FEATURES.npz [WHEELDIR]
# WHEELDIR (optional): wheels installed into /tmp/site first (a host without network).
# PERF_ANALYZER (optional): a perf_analyzer binary, or its .gz, for the C++-client stage.
# STAGES (default "gpu_vs_cpu transport perf"): which measurements to run.
# GPU_ENGINE (default torch; numpy for a dry run on a CPU-only host), BATCHES (transport, perf),
# PORT_BASE (default 8000: HTTP, then gRPC and metrics on the next two ports).
# Starts tritonserver on deploy/gpu's repository (torch on the GPU, onnxruntime on the CPU),
# runs the stages, stops the server. Every stage's JSON and log land in OUTDIR.
set -u -o pipefail
out=${1:?OUTDIR}; feats=${2:?FEATURES.npz}; wheels=${3:-}
stages=${STAGES:-gpu_vs_cpu transport perf}
gpu=${GPU_ENGINE:-torch}; batches=${BATCHES:-1,64,1024,8192,65536}
port=${PORT_BASE:-8000}; url=127.0.0.1:$((port + 1))
mkdir -p "$out"
if [ -n "$wheels" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$wheels"/*.whl "$wheels"/extra/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi >"$out/nvidia-smi.txt" 2>&1
work=/tmp/triton-gpu
t0=$(date +%s)
python3 deploy/gpu/launch.py serve --workdir "$work" --engines "$gpu",onnxruntime \
  --gpu-instances "${GPU_INSTANCES:-2}" --cpu-threads "$(nproc)" --timeout 300 \
  --http-port "$port" --grpc-port $((port + 1)) --metrics-port $((port + 2)) || {
  tail -c 20000 "$work/tritonserver.log" >"$out/tritonserver.log"; exit 1; }
echo "server ready after $(( $(date +%s) - t0 )) s"
bench() { python3 -m deploy.gpu.client_bench run --url "$url" --features "$feats" "$@"; }
if [[ " $stages " == *" gpu_vs_cpu "* ]]; then
  bench --models "${MODELS:-netflow_classifier,edr_classifier,siem_classifier}" \
    --engines "$gpu",onnxruntime --transports grpc --concurrency 1 --inprocess \
    --out "$out/gpu_vs_cpu.json" 2>&1 | tee "$out/gpu_vs_cpu.log"
fi
if [[ " $stages " == *" transport "* ]]; then
  bench --models netflow_classifier --engines "$gpu" --transports grpc,shm,cudashm \
    --concurrency 1,4,16 --batches "$batches" --inprocess \
    --out "$out/transport.json" 2>&1 | tee "$out/transport.log"
fi
if [[ " $stages " == *" perf "* && -n "${PERF_ANALYZER:-}" ]]; then
  pa=$PERF_ANALYZER
  if [[ $pa == *.gz ]]; then mkdir -p /tmp/pa && gunzip -c "$pa" >/tmp/pa/perf_analyzer && pa=/tmp/pa/perf_analyzer; fi
  chmod +x "$pa"
  # It links libb64 and libcudart 12: the pytriton wheel carries both, under hashed names.
  libs=$(python3 -c 'import importlib.util as u, pathlib as p; print(p.Path(u.find_spec("pytriton").origin).parents[1] / "nvidia_pytriton.libs")')
  mkdir -p /tmp/pa/lib && ln -sf "$libs"/libb64-*.so.0d /tmp/pa/lib/libb64.so.0d \
    && ln -sf "$libs"/libcudart-*.so.12* /tmp/pa/lib/libcudart.so.12
  export LD_LIBRARY_PATH=/tmp/pa/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  perf() { python3 -m deploy.gpu.perf_analyzer --perf-analyzer "$pa" --url "$url" \
    --models netflow_classifier \
    --concurrency 1,4,16 --batches "$batches" "$@"; }
  perf --engines "$gpu" --shared-memory none,system,cuda --out "$out/perf_gpu.json" 2>&1 | tee "$out/perf_gpu.log"
  perf --engines onnxruntime --shared-memory none --out "$out/perf_cpu.json" 2>&1 | tee "$out/perf_cpu.log"
fi
python3 deploy/gpu/launch.py stop --workdir "$work"
grep -v '^[|+]' "$work/tritonserver.log" | tail -c 20000 >"$out/tritonserver.log"
