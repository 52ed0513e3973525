"""Mutual TLS end to end: `scorer run`, configured through SCORER_* settings only, reads
events from a broker listener that requires a client certificate, scores them on a
tritonserver whose gRPC endpoint requires one too, and produces alerts there.

The certificates are made here (``cryptography``): a client CA that signs the scorer's
certificate and Triton's server certificate (the broker's server certificate comes from
deploy/local/kafka.sh's own CA, so the scorer trusts two server CAs, as a deployment whose
Kafka and Triton belong to different teams does), and a second, unknown CA with a client
certificate of its own. A scorer without a client certificate, or with the unknown CA's,
is refused by the broker and by Triton: it stops at start with a line that says so, not a
hang and not a silent in-process fallback (``on_triton_outage=pause``).

Reproduce: pytest -s tests/reliability/test_mtls.py
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scorer.config import KafkaSettings
from scorer.kafka.clients import tls_refusal
from scorer.tls import handshake_refusal
from tests.support.faults import (
    Ledger,
    ScorerProcess,
    Topics,
    feed,
    make_stream,
    new_topics,
    read_topics,
    score_backends,
    scorer_env,
    stopped_on_exit,
)
from tests.support.kafka import KafkaBroker, StartKafka
from tests.support.triton import MutualTlsTritonServer, StartTriton


# --------------------------------------------------------------------------- certificates
@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: Path  # signs the scorer's certificate and Triton's
    triton: Issued
    client: Issued
    foreign_client: Issued  # signed by a CA nobody trusts


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey,
                 issuer_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    """Valid from a few minutes ago (clock skew between the processes) for two days, with the key
    identifiers RFC 5280 asks of a CA's certificates: Python 3.13's default context verifies
    strictly (VERIFY_X509_STRICT) and refuses a chain without an Authority Key Identifier."""
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False)
    )


_KEY_USAGE_FLAGS = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
    "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
)


class _Authority:
    """A throw-away CA (EC P-256: quick to make) that issues leaf certificates."""

    def __init__(self, name: str, directory: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(name)
        self.directory = directory
        # A CA signs certificates and CRLs, nothing else.
        usage = x509.KeyUsage(**{flag: flag in ("key_cert_sign", "crl_sign") for flag in _KEY_USAGE_FLAGS})
        cert = (
            _certificate(self.name, self.name, self.key.public_key(), self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage, critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_file = directory / f"{name.replace(' ', '-')}.crt"
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, stem: str, common_name: str, usage: x509.ObjectIdentifier, *, server: bool = False) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = _certificate(_name(common_name), self.name, key.public_key(), self.key.public_key())
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        issued = Issued(self.directory / f"{stem}.crt", self.directory / f"{stem}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, issued.key)
        return issued


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _Authority("scorer test CA", directory)
    foreign = _Authority("unknown test CA", directory)
    return Pki(
        ca=ca.cert_file,
        triton=ca.issue("triton", "localhost", ExtendedKeyUsageOID.SERVER_AUTH, server=True),
        client=ca.issue("scorer", "scorer", ExtendedKeyUsageOID.CLIENT_AUTH),
        foreign_client=foreign.issue("intruder", "scorer", ExtendedKeyUsageOID.CLIENT_AUTH),
    )


# --------------------------------------------------------------------------- services
@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def mtls_kafka(tmp_path_factory: pytest.TempPathFactory, start_kafka: StartKafka, pki: Pki) -> Iterator[KafkaBroker]:
    """A broker whose SSL listener requires a client certificate signed by the test CA."""
    broker = start_kafka(workdir=tmp_path_factory.mktemp("mtls-kafka"), mtls=True, ssl_client_ca=pki.ca)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mtls_triton(
    model_repository: Path,
    tmp_path: Path,
    pki: Pki,
    start_triton: StartTriton,
) -> Iterator[MutualTlsTritonServer]:
    # start_triton: the fixture that marks the test triton (this server starts the same way).
    server = MutualTlsTritonServer.start_mtls(
        model_repository, tmp_path / "triton", server_cert=pki.triton.cert, server_key=pki.triton.key, client_ca=pki.ca
    )
    try:
        yield server
    finally:
        server.stop()


def _mtls_env(
    kafka: KafkaBroker, triton: MutualTlsTritonServer, pki: Pki, repo: Path, topics: Topics
) -> dict[str, str]:
    """`scorer run` over mutual TLS to both, with the test CA's client certificate.
    ``pause`` on outage, so a refused Triton cannot hide behind the in-process fallback."""
    return scorer_env(kafka.ssl_bootstrap, topics, triton=triton, repository=repo) | {
        "SCORER_KAFKA__SECURITY_PROTOCOL": "SSL",
        "SCORER_KAFKA__SSL_CAFILE": str(kafka.ca_file),
        "SCORER_INFERENCE__ON_TRITON_OUTAGE": "pause",
        "SCORER_INFERENCE__TRITON_SSL": "true",
        "SCORER_INFERENCE__TRITON_ROOT_CERTIFICATES": str(pki.ca),
        "SCORER_KAFKA__SSL_CERTFILE": str(pki.client.cert),
        "SCORER_KAFKA__SSL_KEYFILE": str(pki.client.key),
        "SCORER_INFERENCE__TRITON_CERTIFICATE_CHAIN": str(pki.client.cert),
        "SCORER_INFERENCE__TRITON_PRIVATE_KEY": str(pki.client.key),
    }


# --------------------------------------------------------------------------- tests
@pytest.mark.data
async def test_scorer_over_mutual_tls_to_kafka_and_triton_scores_every_event(
    mtls_kafka: KafkaBroker,
    mtls_triton: MutualTlsTritonServer,
    pki: Pki,
    model_repository: Path,
    tmp_path: Path,
) -> None:
    topics = await new_topics(mtls_kafka)
    records = make_stream(topics.kinds, "m", per_kind=300)
    env = _mtls_env(mtls_kafka, mtls_triton, pki, model_repository, topics)
    proc = ScorerProcess(env, tmp_path / "scorer.log")
    ledger = Ledger.of(records, topics)
    client = mtls_kafka.mtls_client_config(pki.client.cert, pki.client.key)  # the test's clients too
    with stopped_on_exit(proc):
        proc.start()
        await proc.wait_ready()
        await feed(client, topics, records, rate=2000)
        outputs = await read_topics(client, topics.all_outputs(), ledger.complete, timeout=90)
        rc = proc.stop()
    report = ledger.report(outputs)
    backends = score_backends(outputs, topics.scores)
    alerts = sum(1 for m in outputs if m.topic.startswith(f"{topics.prefix}.alerts."))
    print(f"\nmutual TLS to Kafka and Triton: {report}; {alerts} alerts; backends {sorted(backends)}")
    assert rc == 0, proc.log_tail()
    assert not report.problems() and report.duplicate_count == 0, report.problems() or report
    assert backends == {"triton"}
    assert alerts > 0


# What the scorer's one line says when the broker refuses (it sends a TLS alert) and when
# Triton does (gRPC hangs up without one): scorer/tls.py.
KAFKA_REFUSED = "tls refused by the server: it refused the client certificate"
TRITON_REFUSED = "closed the connection right after the tls handshake, without a reason: it did not accept this client"
FAULTS = {
    # fault: (which side refuses, foreign certificate (else none), exit status, words of the error)
    "kafka, no client certificate": ("kafka", False, 1, (KAFKA_REFUSED, "no client certificate is configured")),
    "kafka, certificate of an unknown CA": ("kafka", True, 1, (KAFKA_REFUSED, "intruder.crt")),
    "triton, no client certificate": ("triton", False, 2, (TRITON_REFUSED, "no client certificate is configured")),
    "triton, certificate of an unknown CA": ("triton", True, 2, (TRITON_REFUSED, "intruder.crt")),
}


@pytest.mark.data
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_client_without_a_trusted_certificate_is_refused_with_a_clear_error(
    mtls_kafka: KafkaBroker,
    mtls_triton: MutualTlsTritonServer,
    pki: Pki,
    model_repository: Path,
    tmp_path: Path,
    fault: str,
) -> None:
    side, foreign, status, words = FAULTS[fault]
    topics = await new_topics(mtls_kafka)
    wrong = pki.foreign_client if foreign else None
    env = _mtls_env(mtls_kafka, mtls_triton, pki, model_repository, topics)
    # Only the refusing side gets the wrong (or no) certificate: the other one must work.
    keys = (
        ("SCORER_KAFKA__SSL_CERTFILE", "SCORER_KAFKA__SSL_KEYFILE")
        if side == "kafka"
        else ("SCORER_INFERENCE__TRITON_CERTIFICATE_CHAIN", "SCORER_INFERENCE__TRITON_PRIVATE_KEY")
    )
    for var, value in zip(keys, (wrong.cert, wrong.key) if wrong else (None, None), strict=True):
        if value is None:
            env.pop(var)
        else:
            env[var] = str(value)
    proc = ScorerProcess(env, tmp_path / "scorer.log")
    started = time.monotonic()
    with stopped_on_exit(proc):
        proc.start()
        assert proc.proc is not None
        rc = proc.proc.wait(120)  # a limit, not a schedule: a refused client must not hang
    log = proc.log.read_text(errors="replace")
    line = [line for line in log.splitlines() if line.startswith("scorer: ")]
    print(f"\n{fault}: scorer exited rc={rc} after {time.monotonic() - started:.1f}s: {line}")
    assert rc == status, log[-3000:]
    assert line and all(w in line[-1].lower() for w in words), log[-3000:]
    assert "Traceback" not in log, log[-3000:]


# --------------------------------------------------------------------------- the probe alone
@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("trusted", None),
        ("none", "it requires a client certificate and none was presented"),
        ("foreign", "it does not trust the ca that signed the client certificate"),
        ("trusted, server hangs up", "closed the connection right after the tls handshake"),
        ("trusted, server not trusted", "tls error: [ssl: certificate_verify_failed]"),
    ],
)
async def test_handshake_refusal_reads_what_an_openssl_server_says(pki: Pki, client: str, expected: str | None) -> None:
    """scorer/tls.py against a TLS 1.3 server that requires a client certificate (Python's
    OpenSSL, which sends the standard alerts), one that hangs up after the handshake, and
    one whose own certificate the client does not trust (no word on the client's then)."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    server_context.load_cert_chain(str(pki.triton.cert), str(pki.triton.key))
    server_context.verify_mode = ssl.CERT_REQUIRED
    hang_up = client.endswith("hangs up")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_one() -> None:
        # Blocking sockets: OpenSSL writes its alert before the handshake call raises (an
        # asyncio server aborts the connection instead, without the alert).
        with listener:
            listener.settimeout(60)  # a limit, not a schedule: the probe connects at once
            conn, _ = listener.accept()
            with contextlib.suppress(ssl.SSLError, OSError), server_context.wrap_socket(conn, server_side=True) as tls:
                if not hang_up:
                    tls.sendall(b"accepted")  # a client that got this far was accepted

    server = threading.Thread(target=serve_one, name="tls-server")
    server.start()
    issued = {"trusted": pki.client, "none": None, "foreign": pki.foreign_client}[client.split(",")[0]]
    context = ssl.create_default_context(cafile=None if client.endswith("not trusted") else str(pki.ca))
    if issued is not None:
        context.load_cert_chain(str(issued.cert), str(issued.key))
    try:
        reason = await handshake_refusal("127.0.0.1", port, context, client_certificate=issued.cert if issued else None)
    finally:
        await asyncio.to_thread(server.join)
    print(f"\n{client}: {reason}")
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason.lower(), reason
        note = str(issued.cert) if issued else "no client certificate is configured"
        assert (note in reason) is not client.endswith("not trusted"), reason


async def test_kafka_tls_refusal_is_only_looked_for_over_tls() -> None:
    # Plaintext: nothing to probe, so no connection is made (the port is never listened on).
    assert await tls_refusal(KafkaSettings(bootstrap_servers="127.0.0.1:1")) is None
