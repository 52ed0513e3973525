#!/bin/bash
# cgboth.sh TAG: base then work; prints instructions per event of decode and decide
tag=$1; shift
$(dirname $(readlink -f $0))/cg.sh ${BASE:-/tmp/hdec-base} base-$tag "$@" >/dev/null
$(dirname $(readlink -f $0))/cg.sh ${AFTER:-/tmp/hdec-after} work-$tag "$@" >/dev/null
for side in base work; do  
  f1=$(ls ${CG_OUT:-/tmp}/cg-$side-$tag.*.1); f2=$(ls ${CG_OUT:-/tmp}/cg-$side-$tag.*.2)
  d=$(grep -m1 '^summary' $f1 | awk '{print $2}'); c=$(grep -m1 '^summary' $f2 | awk '{print $2}')
  echo "$side: decode $((d/${N:-3000})) decide $((c/${N:-3000})) instructions/event (${N:-3000} events, $*)"
done
