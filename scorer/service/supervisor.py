"""``scorer run --processes N``: N scoring processes, one supervisor.

One scoring process is one Python thread, so one core. The supervisor starts N ordinary
``scorer run`` processes (workers), members of the same consumer group, each with its own
``client_id`` (``<client_id>-<index>``: its transactional id, and its static member id
when one is set, stay the same across its restarts, so a restarted worker fences its dead
predecessor's transaction and takes its partitions back). It

- serves one ``/metrics`` (every worker's samples with a ``worker`` label, and its own:
  ``scorer_worker_up``, ``scorer_worker_restarts_total``), ``/healthz``, and ``/readyz``
  (ready while every worker is);
- restarts a worker that exits, after a backoff that doubles from 1 s to 30 s and starts
  again at 1 s once a worker has stayed up for a minute; Kafka moves the dead worker's
  partitions to the others meanwhile and back at the restart (at-least-once: the records it
  had not committed are scored again; exactly-once: its open transaction is aborted);
- on SIGTERM/SIGINT passes SIGTERM on: every worker finishes and commits its batches in
  flight and leaves the group, as a lone ``scorer run`` does; a worker still running after
  ``stop_timeout_s`` is killed.

A worker that fails before it was ever ready on its first start (bad settings, no broker)
would fail again: the supervisor then stops the others and exits with its exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import random
import signal
import socket
import sys
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from scorer.config import Settings
from scorer.errors import ConfigError
from scorer.metrics.aggregate import WorkerMetrics, fetch
from scorer.service.http import HealthServer
from scorer.service.signals import stop_on_signals

log = logging.getLogger(__name__)

BACKOFF_S = (1.0, 30.0)  # first and longest wait before a restart
STABLE_S = 60.0  # up this long: the next crash restarts after the first backoff again
READY_POLL_S = 0.5


class Worker:
    def __init__(self, index: int, argv: list[str], env: dict[str, str], listener: socket.socket) -> None:
        self.index = index
        self.argv = argv
        self.listener = listener  # its HTTP socket, held by the supervisor, inherited at each start
        port = listener.getsockname()[1]
        self.env = env | {"SCORER_HTTP__PORT": str(port), "SCORER_HTTP__FD": str(listener.fileno())}
        self.url = f"http://127.0.0.1:{port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = False
        self.ever_ready = False
        self.starts = 0

    @property
    def name(self) -> str:
        return str(self.index)

    async def start(self) -> None:
        self.ready = False
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, stdin=asyncio.subprocess.DEVNULL, preexec_fn=_die_with_parent,
            pass_fds=(self.listener.fileno(),))
        self.starts += 1
        log.info("worker %d started (pid %d)", self.index, self.proc.pid)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies (even by SIGKILL), so no
    worker outlives it and keeps its partitions."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Supervisor:
    def __init__(self, settings: Settings, processes: int, child_args: list[str],
                 stop_timeout_s: float = 60.0) -> None:
        self.settings = settings
        self.stop_timeout_s = stop_timeout_s
        self._stopping = asyncio.Event()
        self.exit_code = 0
        kafka = settings.kafka
        base = {k: v for k, v in os.environ.items()}
        argv = [sys.executable, "-m", "scorer.cli", *child_args]
        self.workers: list[Worker] = []
        for i, listener in enumerate(worker_listeners(settings.http.port, processes)):
            env = base | {
                "SCORER_HTTP__HOST": "127.0.0.1",
                "SCORER_KAFKA__CLIENT_ID": f"{kafka.client_id}-{i}",
            }
            if kafka.group_instance_id:
                env["SCORER_KAFKA__GROUP_INSTANCE_ID"] = f"{kafka.group_instance_id}-{i}"
            self.workers.append(Worker(i, argv, env, listener))
        self.registry = CollectorRegistry()
        self.up = Gauge("scorer_worker_up", "1 while the worker process runs", ["worker"], registry=self.registry)
        self.restarts = Counter("scorer_worker_restarts", "Worker processes started again after they exited",
                                ["worker"], registry=self.registry)
        self.scraper = WorkerMetrics(lambda: [(w.name, w.url) for w in self.workers if w.proc is not None])
        self.registry.register(self.scraper)

    @property
    def ready(self) -> bool:
        return not self._stopping.is_set() and all(w.ready for w in self.workers)

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self) -> int:
        http = HealthServer(self.registry, lambda: self.ready, host=self.settings.http.host,
                            port=self.settings.http.port)
        try:
            await http.start()
        except BaseException:
            self._close_listeners()
            raise
        log.info("supervisor of %d workers; metrics and health on http://%s:%d",
                 len(self.workers), self.settings.http.host, http.port)
        stop_on_signals(self.request_stop)
        keepers = [asyncio.create_task(self._keep(w)) for w in self.workers]
        poll = asyncio.create_task(self._poll_ready())
        try:
            await self._stopping.wait()
            await self._stop_all()
            await asyncio.gather(*keepers)
        finally:
            poll.cancel()
            for task in keepers:
                task.cancel()
            await http.close()
            self.scraper.close()
            self._close_listeners()
        return self.exit_code

    def _close_listeners(self) -> None:
        for w in self.workers:
            w.listener.close()

    async def _keep(self, w: Worker) -> None:
        """Run ``w`` until the supervisor stops; restart it with backoff whenever it exits."""
        backoff = BACKOFF_S[0]
        while not self._stopping.is_set():
            await w.start()
            self.up.labels(w.name).set(1)
            started = time.monotonic()
            assert w.proc is not None
            rc = await w.proc.wait()
            w.ready = False
            self.up.labels(w.name).set(0)
            if self._stopping.is_set():
                if rc != 0:
                    self.exit_code = self.exit_code or rc
                return
            if not w.ever_ready and w.starts == 1:
                log.error("worker %d exited with %d before it was ever ready: stopping", w.index, rc)
                self.exit_code = rc or 1
                self._stopping.set()
                return
            if time.monotonic() - started >= STABLE_S:
                backoff = BACKOFF_S[0]
            log.warning("worker %d exited with %d; restarting in %.0f s", w.index, rc, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            if self._stopping.is_set():
                return
            backoff = min(backoff * 2, BACKOFF_S[1])
            self.restarts.labels(w.name).inc()

    async def _poll_ready(self) -> None:
        while True:
            for w in self.workers:
                running = w.proc is not None and w.proc.returncode is None
                w.ready = running and (await asyncio.to_thread(fetch, w.url + "/readyz", 1.0))[0] == 200
                w.ever_ready |= w.ready
            await asyncio.sleep(READY_POLL_S)

    async def _stop_all(self) -> None:
        running = [w.proc for w in self.workers if w.proc is not None and w.proc.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in running)), self.stop_timeout_s)
        except TimeoutError:
            for proc in running:
                if proc.returncode is None:
                    log.error("worker pid %d did not stop in %.0f s: killed", proc.pid, self.stop_timeout_s)
                    proc.kill()
                    self.exit_code = self.exit_code or 1


def worker_listeners(port: int, processes: int) -> list[socket.socket]:
    """The workers' listening sockets on loopback, ports ``port + 1 .. port + N`` beside a fixed
    supervisor port, free ones when the supervisor's is 0 (tests, several supervisors on one
    host). Bound here and held while the supervisor runs, a worker inheriting its socket: a port
    only chosen here and bound by the worker seconds later (after its imports, or its restart's
    backoff) can be taken by another process first, and the worker then fails to start."""
    listeners: list[socket.socket] = []
    try:
        for i in range(processes):
            wanted = port + 1 + i if port else 0
            s = socket.socket()
            listeners.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's servers: past TIME_WAIT
            try:
                s.bind(("127.0.0.1", wanted))
            except OSError as exc:
                raise ConfigError(f"worker {i}'s metrics port 127.0.0.1:{wanted} (the supervisor's port + {i + 1}): "
                                  f"{exc.strerror}") from None
            s.listen(128)
            s.set_inheritable(True)
    except BaseException:
        for s in listeners:
            s.close()
        raise
    return listeners


def free_port_block(count: int, tries: int = 200) -> int:
    """A loopback port P with P .. P + count - 1 free now, below the kernel's ephemeral range: a
    supervisor's fixed port for tests and benches, its workers' beside it (:func:`worker_listeners`).
    A port from ``bind(0)`` is in that range, where outgoing connections (Kafka clients, other
    tests') take ports at any moment: a P + 1 free when P was chosen there can be taken before
    the supervisor binds it, and the worker's start then fails."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            ephemeral = int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768  # Linux's default
    for _ in range(tries):
        first = random.randrange(10_000, max(10_001, ephemeral - count))
        taken = []
        try:
            for port in range(first, first + count):
                s = socket.socket()
                taken.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listeners will bind
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in taken:
                s.close()
    raise OSError(f"no {count} free loopback ports in a row below {ephemeral} after {tries} tries")


def child_arguments(log_level: str, config: Path | None) -> list[str]:
    """The ``scorer`` arguments of one worker: the supervisor's own, less ``--processes``."""
    return ["--log-level", log_level, "run", *(["--config", str(config)] if config is not None else [])]


async def supervise(settings: Settings, processes: int, child_args: list[str]) -> int:
    return await Supervisor(settings, processes, child_args).run()
