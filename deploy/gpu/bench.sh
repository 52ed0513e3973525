#!/usr/bin/env bash
# The GPU-serving measurement of docs/gpu-serving.md in one go, on a GPU host:
#   deploy/gpu/bench.sh OUTDIR FEATURES.npz [WHEELDIR]
# WHEELDIR (optional): wheels installed into /tmp/site first (a host without network).
# Starts tritonserver on deploy/gpu's repository (torch on the GPU, onnxruntime on the CPU),
# runs scorer.bench.gpu_triton twice (GPU vs CPU per batch; transports x requests in flight
# plus the in-process limit), stops the server. Every step's output lands in OUTDIR.
set -u -o pipefail
out=${1:?OUTDIR}; feats=${2:?FEATURES.npz}; wheels=${3:-}
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
python3 deploy/gpu/launch.py serve --workdir "$work" --engines torch,onnxruntime \
  --gpu-instances "${GPU_INSTANCES:-2}" --cpu-threads "$(nproc)" --timeout 300 || {
  tail -c 20000 "$work/tritonserver.log" >"$out/tritonserver.log"; exit 1; }
echo "server ready after $(( $(date +%s) - t0 )) s"
bench() { python3 -m scorer.bench.gpu_triton run --features "$feats" "$@"; }
bench --models "${MODELS:-netflow_classifier,edr_classifier,siem_classifier}" \
  --engines torch,onnxruntime --transports grpc --concurrency 1 \
  --out "$out/gpu_vs_cpu.json" 2>&1 | tee "$out/gpu_vs_cpu.log"
bench --models netflow_classifier --engines torch --transports grpc,shm,cudashm \
  --concurrency 1,4,16 --batches 1,64,1024,8192,65536 --inprocess \
  --out "$out/transport.json" 2>&1 | tee "$out/transport.log"
python3 deploy/gpu/launch.py stop --workdir "$work"
grep -v '^[|+]' "$work/tritonserver.log" | tail -c 20000 >"$out/tritonserver.log"
