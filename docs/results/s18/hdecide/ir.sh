#!/bin/bash
# ir.sh TREE TAG [ir.py args]: instructions per event and per batch of score() outside decode/rules/features
tree=$1; tag=$2; shift 2
out=${CG_OUT:-/tmp/hdecide-cg}/cg-$tag; mkdir -p $(dirname $out); rm -f $out.*
here=$(dirname $(readlink -f $0))
cd $tree && PYTHONPATH=$tree valgrind --tool=callgrind --toggle-collect=functools_reduce \
  --callgrind-out-file=$out.cg /work/main/.venv/bin/python -P $here/ir.py "$@" > $out.log 2>&1
python3 $here/irsum.py $out.cg $out.log
