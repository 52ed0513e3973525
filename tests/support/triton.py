"""A real tritonserver for tests, started through deploy/local/triton.py.

    server = TritonServer.start(repository, workdir)   # free ports, waits until ready
    backend = TritonBackend(server.grpc_url)
    server.restart()                                   # same ports: clients reconnect
    server.stop()
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "deploy" / "local" / "triton.py"


def _launcher() -> ModuleType:
    # deploy/local is scripts, not a package: load the launcher by path, once.
    name = "scorer_deploy_local_triton"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, LAUNCHER)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TritonServer:
    repository: Path
    workdir: Path
    grpc_port: int
    http_port: int
    metrics_port: int
    pid: int = 0
    start_seconds: float = 0.0  # last start until ready, for reporting

    @classmethod
    def start(cls, repository: Path, workdir: Path, *, timeout_s: float = 60.0) -> TritonServer:
        server = cls(repository, workdir, free_port(), free_port(), free_port())
        server._start(timeout_s)
        return server

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log(self) -> Path:
        return self.workdir / "tritonserver.log"

    def sync(self) -> list[str]:
        """Mirror the source repository again (after publishing a new version)."""
        shim_repository = self.workdir / "repository"
        models: list[str] = _launcher().sync_repository(self.repository, shim_repository)
        return models

    def stop(self) -> None:
        _launcher().stop(self.workdir)

    def restart(self, *, timeout_s: float = 60.0) -> None:
        self.stop()
        self._start(timeout_s)

    def _start(self, timeout_s: float) -> None:
        launcher = _launcher()
        started = time.monotonic()
        self.pid = launcher.serve(
            self.repository, self.workdir, grpc_port=self.grpc_port,
            http_port=self.http_port, metrics_port=self.metrics_port,
        )
        try:
            launcher.wait(self.workdir, timeout_s=timeout_s)
        except SystemExit as exc:  # the launcher exits on failure; tests want an error
            tail = self.log.read_text()[-4000:] if self.log.is_file() else ""
            self.stop()
            raise RuntimeError(f"tritonserver failed to start: {exc}\n{tail}") from None
        self.start_seconds = time.monotonic() - started
