#!/bin/bash
# cg.sh TREE TAG [args]: instructions of decode and decide per event, callgrind toggled on functools_reduce
tree=$1; tag=$2; shift 2
out=${CG_OUT:-/tmp}/cg-$tag
rm -f $out.*
cd $tree && PYTHONPATH=$tree valgrind --tool=callgrind --toggle-collect=functools_reduce --dump-after=functools_reduce \
  --callgrind-out-file=$out.%p /work/main/.venv/bin/python -P $(dirname $(readlink -f $0))/cg.py "$@" > $out.log 2>&1
for f in $(ls -tr $out.*.* 2>/dev/null; ls $out.[0-9]* 2>/dev/null | sort -t. -k3 -n); do :; done
ls $out.* | grep -v log
