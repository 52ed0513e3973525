#!/usr/bin/env bash
# The GPU host's open questions (docs/gpu-serving.md, "Run 14") in one device call, ~8 minutes:
#   deploy/gpu/study.sh OUTDIR [FEATURES.npz] [STACK.tar.xz]
# (defaults var/dev/feats.npz and var/stack.tar.xz, both carried: deploy/gpu/README.md, "Measure").
# 1. batch1.sh: the production name's batch-1 latency with the shipped router (no batcher, 2 CPU
#    instances) scoring small requests with the compiled trees (-O3, shipped), GTIL, and the trees
#    built with -Os, interleaved (B1_VARIANTS), perf_analyzer at B1_CONCURRENCY in flight, the
#    loopback floor once;
# 2. bench.sh stages route and scorers on the shipped server (router + nvForest): the scorer's
#    FailoverBackend with every call in process (compiled trees) against every call to Triton per
#    call size (route_bench.py: the inference.in_process_below_rows to set), then N scorers
#    (SCORER_PROCESSES) at SCORER_MICRO_BATCH-record micro-batches, every request of which is below
#    the router's threshold (512 records: 157-179 rows a kind).
# Each part is time-boxed (B1_TIMEOUT, BENCH_TIMEOUT seconds) so that the call ends inside a device
# call's 600 s; what they wrote lands in OUTDIR/study.tgz (one file: a call returns at most 8).
set -u -o pipefail
out=${1:?OUTDIR}; feats=${2:-var/dev/feats.npz}; stack=${3-var/stack.tar.xz}  # "" : no archive (the packages are installed)
work=${STUDY_WORK:-/tmp/study}
here=$(dirname "$0")
rm -rf "$work" && mkdir -p "$work" "$out" || exit 1
export PYTHONUNBUFFERED=1
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; uname -r; nproc
  python3 --version; ${CC:-cc} --version | head -1; } 2>&1 | tee "$work/host.txt"
NATIVE_CONCURRENCY=${B1_CONCURRENCY:-1,16} \
  VARIANTS=${B1_VARIANTS:-off/2/compiled off/2/gtil off/2/compiled-Os off/2/compiled off/2/gtil} \
  timeout "${B1_TIMEOUT:-270}" "$here/batch1.sh" "$work/batch1" "$feats" "$stack" 2>&1 |
  grep -E '^(==|[0-9]+-|\{)' | cut -c1-190
date -u
STAGES="route scorers" CPU_ENGINES=routed SCORER_TARGETS=routed MICRO_BATCH=${SCORER_MICRO_BATCH:-512} \
  PROCESSES=${SCORER_PROCESSES:-1,4,16} DURATION=4 PORT_BASE=9000 \
  timeout "${BENCH_TIMEOUT:-170}" "$here/bench.sh" "$work/bench" "$feats" "$stack" 2>&1 |
  grep -vE '^\[|Treelite version|^ *$' | cut -c1-260 | tail -60
date -u
tar -C "$work" -czf "$out/study.tgz" . && ls -la "$out"
