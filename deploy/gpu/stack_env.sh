# Sourced by bench.sh and batch1.sh with $stack set (maybe empty): unpacks deploy/gpu/stack.py's
# archive to /tmp/stack once per machine, puts its site/ on PYTHONPATH, and copies the scorer's C
# extensions built for the host's Python (its native/) into scorer/native (the compiled
# in-process engine loads scorer.native._trees; without it the scorer falls back to ONNX Runtime).
if [ -n "${stack:-}" ]; then
  if [ ! -f /tmp/stack/.unpacked ] || [ "$(cat /tmp/stack/.unpacked)" != "$(stat -c %s-%Y "$stack")" ]; then
    rm -rf /tmp/stack && mkdir -p /tmp/stack && tar -C /tmp/stack -xJf "$stack" || exit 1
    stat -c %s-%Y "$stack" >/tmp/stack/.unpacked
  fi
  export PYTHONPATH=/tmp/stack/site:$PWD
  if [ -d /tmp/stack/native ]; then cp /tmp/stack/native/*.so scorer/native/ || exit 1; fi
fi
