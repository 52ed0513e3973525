#!/usr/bin/env bash
# Thin wrapper: deploy/local/triton.sh serve|wait|sync|stop [options]  (see triton.py --help).
# Uses the project venv when present: its bin/ must lead PATH for the python backend stub.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
cd "$root"
exec "$python" "$root/deploy/local/triton.py" "$@"
