#!/usr/bin/env bash
# Same-run A/B of the realistic drain: session 14's final code (060dfc3) against this session's (HEAD),
# alternated old/new twice, one fresh broker, quiet box.
set -u
OUT=/work/main/docs/results/s15/ab-s14
export SCORER_DATA_DIR=/work/shared/data
cd /work/main && git rev-parse --short HEAD > $OUT/commits.txt && echo 060dfc3 >> $OUT/commits.txt
(while true; do echo "$(date -u +%T) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 10; done) > "$OUT/load.txt" &
LOADPID=$!
deploy/local/kafka.sh restart > $OUT/kafka.log 2>&1
for i in 1 2; do
  for side in old new; do
    if [ $side = old ]; then tree=/tmp/lead/wt-s14; else tree=/work/main; fi
    echo "== $(date -u +%T) $side $i"
    (cd $tree && PYTHONPATH=$tree /work/main/.venv/bin/python -m scorer.cli bench --stream realistic \
      --runners passthrough,scorer-compiled,quix-app --events 100000 --baseline-events 20000 --repeat 2 --rate 0 \
      --out $OUT/$side-$i.json > $OUT/$side-$i.log 2>&1)
    grep -E "drain" $OUT/$side-$i.log
  done
done
cd /work/main && deploy/local/kafka.sh stop >> $OUT/kafka.log 2>&1
kill $LOADPID
echo done $(date -u +%T)
