"""`scorer run` as a real subprocess (started by env, crashed with SIGKILL, stopped with
SIGTERM, scraped on /metrics), its RSS, and the per-test topics and environment it uses."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.structs import ConsumerRecord

from scorer.events.structs import EventKind
from scorer.shutdown import stop_process
from tests.support.kafka import KafkaBroker, free_ports
from tests.support.paths import MODEL_REPOSITORY, ROOT
from tests.support.triton import TritonServer


def seed() -> int:
    """Random seed of the fault schedule; SCORER_RELIABILITY_SEED replays a run."""
    value = int(os.environ.get("SCORER_RELIABILITY_SEED", str(random.SystemRandom().randrange(1 << 30))))
    print(f"\nreliability seed {value} (SCORER_RELIABILITY_SEED={value} reproduces the schedule)")
    return value


@functools.cache
def usable_kinds() -> tuple[EventKind, ...]:
    """The kinds whose shipped model loads against the scorer's feature contract right now.

    A colleague may be republishing a model (its feature contract briefly in flux); a fault
    test must not fail for that, but it says loudly which kinds it left out (under
    SCORER_STRICT_SKIPS=1, as in CI, it fails instead).
    SCORER_RELIABILITY_KINDS="edr,siem" pins the kinds explicitly.
    """
    from scorer.config import Settings
    from scorer.service.build import build_runtimes, load_rules

    pinned = os.environ.get("SCORER_RELIABILITY_KINDS")
    if pinned:
        return tuple(EventKind(k.strip()) for k in pinned.split(",") if k.strip())
    kinds: list[EventKind] = []
    for kind in EventKind:
        try:
            # As the service builds it: the feature set the card names, with the rules stage
            # (an EDR model on feature set v3 reads rule hits).
            settings = Settings(kinds=(kind,), inference={"model_repository": MODEL_REPOSITORY})  # type: ignore[arg-type]
            build_runtimes(settings, rules=load_rules(settings))
        except Exception as exc:  # any load failure: leave the kind out, visibly (never in CI)
            if os.environ.get("SCORER_STRICT_SKIPS") == "1":
                raise AssertionError(f"shipped {kind.value} model does not load: {exc}") from exc
            print(f"\nWARNING: kind {kind.value} left out of the reliability tests: {exc}")
            continue
        kinds.append(kind)
    return tuple(kinds)


# --------------------------------------------------------------------------- topics and env
@dataclass(frozen=True)
class Topics:
    prefix: str
    kinds: tuple[EventKind, ...]

    def input(self, kind: EventKind) -> str:
        return f"{self.prefix}.events.{kind.value}"

    def alerts(self, kind: EventKind) -> str:
        return f"{self.prefix}.alerts.{kind.value}"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq"

    @property
    def scores(self) -> str:
        return f"{self.prefix}.scores"

    def all_outputs(self) -> list[str]:
        return [self.scores, self.dlq, *(self.alerts(k) for k in self.kinds)]

    def env(self) -> dict[str, str]:
        env = {f"SCORER_TOPICS__{k.value.upper()}": self.input(k) for k in EventKind}
        env.update({
            "SCORER_KINDS": json.dumps([k.value for k in self.kinds]),
            "SCORER_TOPICS__ALERTS_PREFIX": f"{self.prefix}.alerts.",
            "SCORER_TOPICS__DEAD_LETTER": self.dlq,
            "SCORER_TOPICS__SCORES": self.scores,
        })
        return env


async def new_topics(kafka: KafkaBroker, kinds: Sequence[EventKind] | None = None, partitions: int = 3) -> Topics:
    """Fresh, uniquely named topics (inputs and outputs) for one test."""
    topics = Topics(f"r{uuid.uuid4().hex[:8]}", tuple(kinds or usable_kinds()))
    names = [topics.input(k) for k in topics.kinds] + topics.all_outputs()
    await asyncio.gather(*(kafka.acreate_topic(n, partitions) for n in names))
    return topics


def scorer_env(
    bootstrap: str, topics: Topics, *, triton: TritonServer | None = None, repository: Path = MODEL_REPOSITORY,
    **extra: str,
) -> dict[str, str]:
    """Environment of one `scorer run`: small batches, scoring on ``triton`` (ONNX Runtime in
    process when None) with the models of ``repository``; ``extra`` overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORER_")}
    env.update(topics.env())
    env.update({
        "SCORER_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "SCORER_KAFKA__GROUP_ID": f"{topics.prefix}-group",
        "SCORER_KAFKA__CLIENT_ID": f"{topics.prefix}-scorer",
        "SCORER_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "SCORER_BATCH__MAX_RECORDS": "64",
        "SCORER_INFERENCE__BACKEND": "onnxruntime" if triton is None else "triton",
        "SCORER_INFERENCE__MODEL_REPOSITORY": str(repository),
        "SCORER_HTTP__PORT": str(free_ports(1)[0]),
    })
    if triton is not None:
        env["SCORER_INFERENCE__TRITON_URL"] = triton.grpc_url
    env.update(extra)
    return env


def score_backends(records: Iterable[ConsumerRecord[bytes, bytes]], scores_topic: str) -> set[str]:
    """Which backends scored the events (``backend`` of every score record)."""
    return {json.loads(m.value)["backend"] for m in records if m.topic == scores_topic and m.value is not None}


# --------------------------------------------------------------------------- the scorer process
class ScorerProcess:
    """One `scorer run` subprocess that can be crashed and started again with the same env."""

    def __init__(self, env: dict[str, str], log: Path, args: Sequence[str] = ()) -> None:
        self.env = env
        self.log = log
        self.args = tuple(args)  # after ``run``: e.g. --processes 2
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.env['SCORER_HTTP__PORT']}"

    def start(self) -> None:
        assert self.pid is None, "already running"
        with self.log.open("ab") as out:  # one log across restarts: the whole story in one file
            out.write(f"\n===== start {self.starts} =====\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "scorer.cli", "run", *self.args], env=self.env, cwd=ROOT,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL: no finally blocks, no commit, no LeaveGroup: a real crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (finish the batch in flight, then exit); the exit code."""
        assert self.proc is not None
        return stop_process(self.proc, timeout)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.http + path, timeout=2) as resp:
                return int(resp.status), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), ""
        except OSError:
            return 0, ""

    def metric(self, name: str) -> float:
        """Sum of every sample of one metric family on /metrics (0 when not up)."""
        _, text = self.get("/metrics")
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and not line.startswith("#"))

    async def scored_more(self, n: int, timeout: float = 120.0, since: float | None = None) -> None:
        """Until this process has scored ``n`` more events than now (or than ``since``, a
        count read before the events were sent): for a test to schedule its next step on
        observed progress instead of a sleep that assumes how far the scorer got. Fails the
        test if that takes over ``timeout`` s (a stalled scorer)."""
        mark = self.metric("scorer_events_scored_total") if since is None else since
        deadline = time.monotonic() + timeout
        while (scored := self.metric("scorer_events_scored_total")) < mark + n:
            assert time.monotonic() < deadline, (
                f"scorer stalled: {scored - mark:.0f} of {n} events scored in {timeout:.0f}s\n{self.log_tail()}")
            await asyncio.sleep(0.1)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"scorer exited rc={self.proc.returncode}:\n{self.log_tail()}")
            if (await asyncio.to_thread(self.get, "/readyz"))[0] == 200:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"scorer not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.is_file() else ""


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class RssWatch:
    """Samples a process's RSS in a thread (the event loop may be busy) until stopped."""

    pid: Callable[[], int | None]
    interval: float = 0.1
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> RssWatch:
        self._thread = threading.Thread(target=self._run, name="rss-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            pid = self.pid()
            if pid is not None and (rss := rss_bytes(pid)):
                self.samples.append(rss)

    @property
    def peak_mb(self) -> float:
        return max(self.samples, default=0) / 2**20


def plaintext(kafka: KafkaBroker) -> dict[str, Any]:
    return {"bootstrap_servers": kafka.bootstrap}


@contextlib.contextmanager
def stopped_on_exit(proc: ScorerProcess) -> Any:
    """Stop the scorer whatever happens in the test (no stray processes on the 2 cores)."""
    try:
        yield proc
    finally:
        if proc.pid is not None:
            proc.stop(10)


@contextlib.asynccontextmanager
async def running_scorer(env: dict[str, str], log: Path) -> AsyncIterator[ScorerProcess]:
    """A `scorer run` started with ``env`` and ready (/readyz 200), stopped on exit."""
    proc = ScorerProcess(env, log)
    with stopped_on_exit(proc):
        proc.start()
        await proc.wait_ready()
        yield proc
