#!/bin/bash
# every 0.5 s: pid minflt utime stime (ticks) of the bench runner processes (python -m scorer.bench.passthrough / scorer run)
while true; do
  for p in $(pgrep -f "scorer.bench.passthrough|scorer run|scorer.cli run"); do
    [ -r /proc/$p/stat ] && echo "$(date +%s.%N) $p $(awk '{print $10, $14, $15}' /proc/$p/stat)"
  done
  sleep 0.5
done
