"""The processes bench's CPU accounting: the scorer's CPU is its supervisor's and every worker's."""

from __future__ import annotations

import subprocess
import sys

from scorer.bench.processes import CpuWatch

# Once told (a line on stdin), burns 0.3 s of CPU, then waits to be killed; its argv names it
# as `scorer run` would be.
_BUSY = ("import sys, time; sys.stdin.readline(); t = time.process_time()\n"
         "while time.process_time() - t < 0.3: pass\n"
         "time.sleep(60)")


def _spawn(*tail: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", _BUSY, "-m", "scorer.cli", "run", *tail], stdin=subprocess.PIPE)


def test_cpu_watch_counts_the_supervisor_and_every_worker() -> None:
    watch = CpuWatch()
    children = [_spawn("--processes", "2"), _spawn(), _spawn()]
    try:
        watch.sample()  # each child first seen before it burns anything
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.close()
        # Each has burnt its CPU once its clock says so: /proc counts in 10 ms ticks, truncated,
        # so 0.3 s burnt between two samples may read as 0.29 (and 0.35 - 0.05 < 0.3 in floats).
        for child in children:
            while watch.last[child.pid] - watch.first[child.pid] < 0.3 - 0.011:
                assert child.poll() is None, f"child exited ({child.returncode}) before burning its CPU"
                watch.sample()
        used = watch.used(0.0)
    finally:
        for child in children:
            child.kill()
            child.wait()
    assert used["scorer supervisor"] >= 0.29 and used["scorer workers"] >= 0.59, used
    assert watch.scorer_s() >= 0.89  # three children, 0.3 s each (float sums)
    assert watch.scorer_s() == sum(s for name, s in used.items() if name.startswith("scorer "))
