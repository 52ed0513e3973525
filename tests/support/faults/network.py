"""Network faults and trust: TLS material, a tritonserver that speaks gRPC over TLS only,
and a broker-side produce quota (a slow downstream)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Float64, Int16, Int32, Schema, String

from tests.support.kafka import free_ports
from tests.support.triton import TritonServer


# --------------------------------------------------------------------------- TLS
@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def make_tls(directory: Path) -> TlsFiles:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost signed by it (PEM)."""
    directory.mkdir(parents=True, exist_ok=True)
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
         "-subj", "/CN=scorer test CA", "-addext", "basicConstraints=critical,CA:TRUE"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.crt", "-days", "2", "-extfile", "server.ext"],
    ]
    for step in steps:
        subprocess.run(["openssl", *step], cwd=directory, check=True, capture_output=True)
    return TlsFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key")


@dataclass
class TlsTritonServer(TritonServer):
    """A tritonserver whose gRPC endpoint speaks TLS only (HTTP stays plain for readiness)."""

    tls: TlsFiles | None = None

    @classmethod
    def start_tls(cls, repository: Path, workdir: Path, tls: TlsFiles) -> TlsTritonServer:
        grpc, http, metrics = free_ports(3)
        server = cls(repository, workdir, grpc, http, metrics, tls=tls)
        server._start(60.0)
        return server

    def _extra_args(self) -> tuple[str, ...]:
        assert self.tls is not None
        return ("--grpc-use-ssl=true", f"--grpc-server-cert={self.tls.cert}",
                f"--grpc-server-key={self.tls.key}", f"--grpc-root-cert={self.tls.ca}")


# --------------------------------------------------------------------------- slow downstream
# aiokafka has no AlterClientQuotas (KIP-546) call, so its v0 wire format is spelled out here:
# a broker-side produce quota is the real way a Kafka cluster slows one client's produce.
class _AlterClientQuotasResponse(Response):  # type: ignore[misc]
    API_KEY = 49
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("entries", Array(("error_code", Int16), ("error_message", String("utf-8")),
                          ("entity", Array(("entity_type", String("utf-8")), ("entity_name", String("utf-8")))))),
    )


class _AlterClientQuotasV0(RequestStruct):  # type: ignore[misc]
    API_KEY = 49
    API_VERSION = 0
    RESPONSE_TYPE = _AlterClientQuotasResponse
    SCHEMA = Schema(
        ("entries", Array(
            ("entity", Array(("entity_type", String("utf-8")), ("entity_name", String("utf-8")))),
            ("ops", Array(("key", String("utf-8")), ("value", Float64), ("remove", Boolean))),
        )),
        ("validate_only", Boolean),
    )


class _AlterClientQuotas(Request[_AlterClientQuotasV0]):  # type: ignore[misc]
    API_KEY = 49

    def __init__(self, client_id: str, byte_rate: float | None) -> None:
        self.client_id = client_id
        self.byte_rate = byte_rate

    def build(self, request_struct_class: type[_AlterClientQuotasV0]) -> _AlterClientQuotasV0:
        op = ("producer_byte_rate", self.byte_rate or 0.0, self.byte_rate is None)
        return request_struct_class([([("client-id", self.client_id)], [op])], False)


async def set_produce_quota(bootstrap: str, client_id: str, byte_rate: float | None) -> None:
    """Throttle every produce request of ``client_id`` to ``byte_rate`` bytes/s on the
    broker (None removes the quota). The broker delays its responses, as a saturated or
    quota-limited downstream cluster does; fetches of the same client are not throttled."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        node = next(iter(client.cluster.brokers())).nodeId
        response = await client.send(node, _AlterClientQuotas(client_id, byte_rate))
        errors = [(e[0], e[1]) for e in response.entries if e[0]]
        assert not errors, f"AlterClientQuotas failed: {errors}"
    finally:
        await client.close()


