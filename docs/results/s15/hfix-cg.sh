#!/bin/bash
# cachegrind with its cache simulation (I1/D1 as this host's L1): warm-up + N events scored,
# minus the warm-up alone, per batch size; the warm-up 16,000 events (the templates once).
cd /work/main
export SCORER_INFERENCE__IN_PROCESS_ENGINE=compiled
for b in 50 2048; do
  if [ $b = 50 ]; then N=3000; else N=6144; fi
  for n in $N 0; do
    valgrind --tool=cachegrind --cache-sim=yes --cachegrind-out-file=/tmp/hfix-cg-b$b-n$n.out \
      .venv/bin/python docs/results/s15/hfix-run.py --batch $b --n $n --warm 16000 --mode time > /tmp/hfix-cg-b$b-n$n.log 2>&1
  done
done
echo done > /tmp/hfix-cg.done
