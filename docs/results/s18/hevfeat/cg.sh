#!/bin/bash
# cg.sh TREE TAG [cg.py args]: instructions of decode (dump 1) and features (dump 2), per event
here=$(dirname $(readlink -f $0)); tree=$1; tag=$2; shift 2
out=${CG_OUT:-/tmp/hevfeat-cg}/cg-$tag
mkdir -p $(dirname $out); rm -f $out.*
cd $tree && PYTHONPATH=$tree valgrind --tool=callgrind --toggle-collect=functools_reduce --dump-after=functools_reduce \
  --callgrind-out-file=$out.%p /work/main/.venv/bin/python -P $here/cg.py "$@" > $out.log 2>&1
n=$(grep -o '^events [0-9]*' $out.log | awk '{print $2}')
f1=$(ls $out.*.1); f2=$(ls $out.*.2)
d=$(grep -m1 '^summary' $f1 | awk '{print $2}'); c=$(grep -m1 '^summary' $f2 | awk '{print $2}')
echo "$tag: decode $((d/n)) features $((c/n)) together $(((d+c)/n)) instructions/event ($n events; $*) $(grep batches $out.log)"
