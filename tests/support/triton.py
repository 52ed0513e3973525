"""A real tritonserver for tests, started through deploy/local/triton.py.

    server = TritonServer.start(repository, workdir)   # free ports, waits until ready
    backend = TritonBackend(server.grpc_url)
    server.restart()                                   # same ports: clients reconnect
    server.stop()

:class:`MutualTlsTritonServer` serves gRPC over mutual TLS only: a client must present a
certificate signed by the given CA.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local import triton as launcher
from tests.support import markers
from tests.support.kafka import free_ports

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(launcher.__file__)  # run as a script by the lifecycle's sync command


@dataclass
class TritonServer:
    repository: Path
    workdir: Path
    grpc_port: int
    http_port: int
    metrics_port: int
    pid: int = 0
    start_seconds: float = 0.0  # last start until ready, for reporting
    grpc_url: str = field(init=False)  # what TritonBackend dials
    http_url: str = field(init=False)  # readiness and the model repository API

    def __post_init__(self) -> None:
        self.grpc_url, self.http_url = f"127.0.0.1:{self.grpc_port}", f"http://127.0.0.1:{self.http_port}"

    @classmethod
    def start(cls, repository: Path, workdir: Path, *, timeout_s: float = 60.0) -> TritonServer:
        grpc, http, metrics = free_ports(3)  # distinct: three separate picks could repeat a port
        server = cls(repository, workdir, grpc, http, metrics)
        server._start(timeout_s)
        return server

    @property
    def log(self) -> Path:
        return self.workdir / "tritonserver.log"

    def sync(self) -> list[str]:
        """Mirror the source repository again (after publishing a new version)."""
        shim_repository = self.workdir / "repository"
        models: list[str] = launcher.sync_repository(self.repository, shim_repository)
        return models

    def stop(self) -> None:
        launcher.stop(self.workdir)

    def restart(self, *, timeout_s: float = 60.0) -> None:
        self.stop()
        self._start(timeout_s)

    def _extra_args(self) -> tuple[str, ...]:
        """tritonserver options beyond the launcher's (a TLS server adds its certificates)."""
        return ()

    def _start(self, timeout_s: float) -> None:
        markers.require("triton", f"a {type(self).__name__} started")
        started = time.monotonic()
        self.pid = launcher.serve(
            self.repository, self.workdir, grpc_port=self.grpc_port,
            http_port=self.http_port, metrics_port=self.metrics_port, extra_args=self._extra_args(),
        )
        try:
            launcher.wait(self.workdir, timeout_s=timeout_s)
        except SystemExit as exc:  # the launcher exits on failure; tests want an error
            tail = self.log.read_text()[-4000:] if self.log.is_file() else ""
            self.stop()
            raise RuntimeError(f"{type(self).__name__} failed to start: {exc}\n{tail}") from None
        self.start_seconds = time.monotonic() - started


@dataclass
class MutualTlsTritonServer(TritonServer):
    """A tritonserver whose gRPC endpoint speaks mutual TLS only (HTTP stays plain, for
    readiness): its certificate and key, and the CA that client certificates must chain to."""

    server_cert: Path | None = None
    server_key: Path | None = None
    client_ca: Path | None = None

    @classmethod
    def start_mtls(
        cls,
        repository: Path,
        workdir: Path,
        *,
        server_cert: Path,
        server_key: Path,
        client_ca: Path,
        timeout_s: float = 60.0,
    ) -> MutualTlsTritonServer:
        grpc, http, metrics = free_ports(3)
        server = cls(repository, workdir, grpc, http, metrics,
                     server_cert=server_cert, server_key=server_key, client_ca=client_ca)
        server._start(timeout_s)
        return server

    def _extra_args(self) -> tuple[str, ...]:
        assert self.server_cert and self.server_key and self.client_ca
        return (
            "--grpc-use-ssl-mutual=true",
            f"--grpc-server-cert={self.server_cert}",
            f"--grpc-server-key={self.server_key}",
            f"--grpc-root-cert={self.client_ca}",
        )


# What the ``start_triton`` fixture is: :meth:`TritonServer.start`.
StartTriton = Callable[..., TritonServer]
