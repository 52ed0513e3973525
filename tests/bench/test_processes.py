"""The processes bench's CPU accounting (the scorer's CPU is its supervisor's and every worker's) and its
start-up progress."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from scorer.bench import harness, processes
from scorer.bench.counting import watch_drain
from scorer.bench.processes import CpuWatch, Progress
from scorer.bench.runner_metrics import consumed_by_worker
from scorer.events.structs import EventKind

# Once told (a line on stdin), burns 0.3 s of CPU, then waits to be killed; its argv names it
# as `scorer run` would be.
_BUSY = ("import sys, time; sys.stdin.readline(); t = time.process_time()\n"
         "while time.process_time() - t < 0.3: pass\n"
         "time.sleep(60)")


def _spawn(*tail: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", _BUSY, "-m", "scorer.cli", "run", *tail], stdin=subprocess.PIPE)


def _burn(watch: CpuWatch, children: list[subprocess.Popen[bytes]]) -> None:
    """Each child told to burn its 0.3 s, sampled until it has."""
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


def test_cpu_watch_counts_the_supervisor_and_every_worker() -> None:
    watch = CpuWatch()
    children = [_spawn("--processes", "2"), _spawn(), _spawn()]
    try:
        _burn(watch, children)
        used = watch.used(0.0)
    finally:
        for child in children:
            child.kill()
            child.wait()
    # (each at least 0.289, summed by name, then rounded to the 10 ms the clock counts in)
    assert used["scorer supervisor"] >= 0.28 and used["scorer workers"] >= 0.57, used
    assert watch.scorer_s() >= 0.86  # three children, 0.3 s each
    assert watch.scorer_s() == sum(s for name, s in used.items() if name.startswith("scorer "))


class _Counted:
    """A drain's count answering from a list, each answer at a later perf_counter time."""

    POLL_S = 0.0

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers

    async def count(self) -> tuple[int, float]:
        return self.answers.pop(0), time.perf_counter()


class _Running:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    def cpu(self) -> float:
        return 0.0

    def sample(self) -> None:
        pass


def test_start_up_progress_comes_from_the_drains_polls_not_the_runner() -> None:
    """Every answer of the drain's count reaches the progress, timed from the runner's launch;
    the progress has no port and asks the runner nothing (its /metrics scrapes cost a
    supervisor a third of a core during the drains it measured)."""
    progress = Progress()
    progress.poll(5, time.perf_counter())  # not launched yet: not recorded
    assert progress.seen == []
    progress.launched = time.perf_counter()
    runner = _Running()
    try:
        window = asyncio.run(watch_drain(_Counted([0, 0, 400, 1000]), runner, 1000, "test",  # type: ignore[arg-type]
                                         on_poll=progress.poll))
    finally:
        runner.proc.kill()
        runner.proc.wait()
    assert [done for _, done in progress.seen] == [0, 0, 400, 1000]
    assert all(0 <= at < 60 for at, _ in progress.seen)
    assert [at for at, _ in progress.seen] == sorted(at for at, _ in progress.seen)
    assert window.count1 == 1000
    assert not hasattr(progress, "port")


def test_consumed_by_worker_sums_kinds_per_worker_label() -> None:
    samples = {
        'scorer_events_consumed_total{kind="edr",worker="0"}': 100.0,
        'scorer_events_consumed_total{kind="siem",worker="0"}': 50.0,
        'scorer_events_consumed_total{kind="edr",worker="1"}': 7.0,
        'scorer_events_consumed_created{kind="edr",worker="1"}': 1.7e9,  # not a count
        'scorer_events_scored_total{kind="edr",backend="onnxruntime",worker="1"}': 7.0,
    }
    assert consumed_by_worker(samples) == {"0": 150.0, "1": 7.0}
    assert consumed_by_worker({'scorer_events_consumed_total{kind="netflow"}': 3.0}) == {"": 3.0}
    assert consumed_by_worker(None) == {}


def test_cpu_between_snapshots_leaves_out_what_was_burnt_before() -> None:
    watch = CpuWatch()
    children = [_spawn("--processes", "2"), _spawn()]
    try:
        _burn(watch, children)
        since = watch.snapshot()  # (both now sleep)
        until = watch.snapshot()
    finally:
        for child in children:
            child.kill()
            child.wait()
    assert watch.scorer_s() >= 0.57  # two children, at least 0.289 s each, rounded to 10 ms
    assert watch.scorer_s(since, until) < 0.05  # a tick or two at most, not the 0.6 s burnt before
    assert set(watch.used(0.0, since, until)) <= set(watch.used(0.0))


class _Snapshots:
    """A CPU watch whose snapshots are given: the scorer's pid 1 at 2 s, then 5 s."""

    def __init__(self) -> None:
        self.names = {1: "scorer workers", 2: "kafka brokers"}
        self.first = {1: 0.5, 2: 0.0}
        self.taken = iter([{1: 2.0, 2: 1.0}, {1: 5.0, 2: 1.5}])

    def snapshot(self) -> dict[int, float]:
        return next(self.taken)

    used = CpuWatch.used
    scorer_s = CpuWatch.scorer_s

    @property
    def last(self) -> dict[int, float]:
        return {1: 5.0, 2: 1.5}


def test_steady_cpu_is_taken_between_a_quarter_and_three_quarters_of_the_events() -> None:
    progress = Progress(_Snapshots(), 1000)  # type: ignore[arg-type]
    assert progress.steady_cpu()["steady_scorer_cpu_us_per_event"] is None  # nothing seen yet
    progress.launched = time.perf_counter()
    for done in (0, 100, 300, 600, 800, 1000):  # snapshots at 300 (>= 250) and 800 (>= 750) records
        progress.poll(done, time.perf_counter())
    assert [n for n, _ in progress.marks] == [300, 800]
    steady = progress.steady_cpu()
    assert steady["steady_scorer_cpu_us_per_event"] == 3.0 / 500 * 1e6  # 3 s of the scorer over 500 records
    assert steady["steady_host_cpu_s"] == {"scorer workers": 3.0, "kafka brokers": 0.5}


def test_outputs_alerts_counts_committed_offsets_and_writes_no_score_records(monkeypatch: Any) -> None:
    """``--outputs alerts`` (the service's default): the workers get no scores topic and the drain
    counts what the group commits; ``scores`` keeps the output topic's count."""
    seen: dict[str, Any] = {}

    async def drain(name: str, command: Any, bootstrap: str, items: Any, kinds: Any, partitions: int, workdir: Path,
                    port: int, *, committed: bool, on_poll: Any) -> Any:
        argv, env = command(bootstrap, {EventKind.EDR: "in.edr"}, "out.scores", "group")
        seen.update(committed=committed, argv=argv, env=env)
        return harness.RunResult(runner=name, events=0, throughput_eps=1.0, cpu_us_per_event=0.0, peak_rss_mb=0.0)

    monkeypatch.setattr(harness, "drain", drain)
    for outputs, committed in (("alerts", True), ("scores", False)):
        args = argparse.Namespace(runner="scorer-vectorized", outputs=outputs, max_records=None, triton_url="",
                                  model_repository=Path("model_repository"), stream="realistic",
                                  bootstrap="127.0.0.1:1", partitions=4)
        run = asyncio.run(processes._drain(args, 2, [], (EventKind.EDR,), Path("/nonexistent")))
        assert seen["committed"] is committed and run["events_per_s"] == 1.0
        assert ("SCORER_TOPICS__SCORES" in seen["env"]) is not committed
        assert seen["argv"][-2:] == ["--processes", "2"]


def test_the_summary_gives_whole_and_steady_medians_against_the_first_count() -> None:
    def run(n: int, whole: float, steady: float | None) -> dict[str, Any]:
        return {"processes": n, "events_per_s": whole, "start_up": {"steady_events_per_s": steady}}

    runs = [run(1, 100.0, 110.0), run(2, 120.0, 200.0), run(1, 90.0, 90.0), run(2, 140.0, None)]
    assert processes.summarise(runs, [1, 2]) == {
        "x1": {"median_events_per_s": 95, "vs_x1": 1.0, "median_steady_events_per_s": 100, "steady_vs_x1": 1.0},
        # a drain too short for a steady part counts in the whole drains only
        "x2": {"median_events_per_s": 130, "vs_x1": 1.37, "median_steady_events_per_s": 200, "steady_vs_x1": 2.0},
    }
