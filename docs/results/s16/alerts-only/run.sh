#!/usr/bin/env bash
# The default deployment's drain (alerts only, counted by committed offsets) beside the score-record drain,
# one after the other on one fresh broker (docs/benchmarks.md section 42).
set -u
cd "$(dirname "$0")/../../../.."
export SCORER_DATA_DIR=${SCORER_DATA_DIR:-$PWD/../shared/data} PATH=$PWD/.venv/bin:$PATH
deploy/local/kafka.sh restart
for outputs in alerts scores; do
  scorer bench --stream realistic --runners passthrough,scorer-vectorized --outputs $outputs --events 300000 --repeat 3 \
    --rate 0 --out docs/results/s16/alerts-only/realistic$([ $outputs = scores ] && echo -scores).json
done
deploy/local/kafka.sh stop
