"""Untrusted network: Kafka over SASL_SSL (SCRAM-SHA-512, broker certificate verified
against its CA) and Triton gRPC over TLS, end to end through `scorer run`.

The SCRAM password comes from the environment or from a file; with DEBUG logging (aiokafka
and grpc included) it must appear neither in the scorer's log nor on /metrics. Misconfigured
trust (wrong password, unknown CA, plaintext gRPC to a TLS server) stops the scorer at start
with an error that names the problem, not the secret.

Reproduce: pytest -s tests/reliability/test_untrusted_network.py
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.faults import (
    Ledger,
    ScorerProcess,
    TlsFiles,
    TlsTritonServer,
    Topics,
    feed,
    make_stream,
    make_tls,
    new_topics,
    read_topics,
    score_backends,
    scorer_env,
    stopped_on_exit,
)
from tests.support.kafka import KafkaBroker
from tests.support.triton import StartTriton

pytestmark = pytest.mark.data



@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the Triton TLS certificates")
    return make_tls(tmp_path / "tls")


@pytest.fixture
def tls_triton(
    model_repository: Path, tmp_path: Path, tls: TlsFiles, start_triton: StartTriton,
) -> Iterator[TlsTritonServer]:
    # start_triton: the fixture that marks the test triton (TlsTritonServer starts the same way).
    server = TlsTritonServer.start_tls(model_repository, tmp_path / "triton", tls)
    try:
        yield server
    finally:
        server.stop()


def _secure_env(
    kafka: KafkaBroker, triton: TlsTritonServer, tls: TlsFiles, topics: Topics, repo: Path, **secret: str
) -> dict[str, str]:
    """SASL_SSL to Kafka and TLS to Triton, plus ``secret``. ``pause`` on outage, so a TLS
    failure cannot hide behind the in-process fallback."""
    return scorer_env(kafka.sasl_ssl_bootstrap, topics, triton=triton, repository=repo, **secret) | {
        "SCORER_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "SCORER_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
        "SCORER_KAFKA__SASL_USERNAME": kafka.scram_user,
        "SCORER_KAFKA__SSL_CAFILE": str(kafka.ca_file),
        "SCORER_INFERENCE__ON_TRITON_OUTAGE": "pause",
        "SCORER_INFERENCE__TRITON_SSL": "true",
        "SCORER_INFERENCE__TRITON_ROOT_CERTIFICATES": str(tls.ca),
        "SCORER_LOG_LEVEL": "DEBUG",  # the most a deployment could log
    }


@pytest.mark.parametrize(("mechanism", "secret_from"),
                         [("SCRAM-SHA-512", "env"), ("SCRAM-SHA-512", "file"), ("PLAIN", "file")])
async def test_sasl_ssl_and_triton_tls_end_to_end_secret_never_leaks(
    own_kafka: KafkaBroker, tls_triton: TlsTritonServer, tls: TlsFiles, model_repository: Path,
    tmp_path: Path, mechanism: str, secret_from: str,
) -> None:
    password = own_kafka.scram_password
    secret_file = tmp_path / "scram-password"
    secret_file.write_text(password + "\n")
    secret_file.chmod(0o600)
    secret = ({"SCORER_KAFKA__SASL_PASSWORD": password} if secret_from == "env"
              else {"SCORER_KAFKA__SASL_PASSWORD_FILE": str(secret_file)})
    topics = await new_topics(own_kafka)
    records = make_stream(topics.kinds, "n", per_kind=300)
    env = _secure_env(own_kafka, tls_triton, tls, topics, model_repository, **secret)
    env["SCORER_KAFKA__SASL_MECHANISM"] = mechanism
    proc = ScorerProcess(env, tmp_path / "scorer.log")
    ledger = Ledger.of(records, topics)
    client = own_kafka.sasl_client_config()  # the test's own clients come over SASL_SSL too
    with stopped_on_exit(proc):
        proc.start()
        await proc.wait_ready()
        await feed(client, topics, records, rate=2000)
        outputs = await read_topics(client, topics.all_outputs(), ledger.complete, timeout=90)
        _, metrics = proc.get("/metrics")
        rc = proc.stop()
    report = ledger.report(outputs)
    log = proc.log.read_text(errors="replace")
    backends = score_backends(outputs, topics.scores)
    print(f"\nSASL_SSL ({mechanism}) + Triton TLS, password from {secret_from}: {report}; backends {sorted(backends)}; "
          f"searched {len(log)} chars of DEBUG log and {len(metrics)} of /metrics for the password")
    assert rc == 0, proc.log_tail()
    assert not report.problems() and report.duplicate_count == 0, report.problems() or report
    assert backends == {"triton"}
    assert "SaslAuthenticate" in log and metrics.startswith("#")  # we did look at real output
    assert password not in log, "password in the scorer's log"
    assert password not in metrics, "password on /metrics"
    if mechanism == "PLAIN":  # aiokafka logged the PLAIN authenticate request: masked
        assert "\\x00**********" in log


@pytest.mark.parametrize("fault", ["wrong password", "unknown CA", "plaintext gRPC"])
async def test_untrusted_peer_or_bad_secret_stops_the_scorer_without_leaking(
    own_kafka: KafkaBroker, tls_triton: TlsTritonServer, tls: TlsFiles, model_repository: Path,
    tmp_path: Path, fault: str,
) -> None:
    topics = await new_topics(own_kafka)
    wrong = "Wr0ng-Pa55w0rd-do-not-log"
    env = _secure_env(own_kafka, tls_triton, tls, topics, model_repository,
                      SCORER_KAFKA__SASL_PASSWORD=own_kafka.scram_password)
    expect = {"wrong password": "authentication", "unknown CA": "certificate verify failed",
              "plaintext gRPC": "unavailable"}[fault]
    if fault == "wrong password":
        env["SCORER_KAFKA__SASL_PASSWORD"] = wrong
    elif fault == "unknown CA":
        env.pop("SCORER_KAFKA__SSL_CAFILE")  # system CAs only: the broker's own CA is unknown
    else:
        env["SCORER_INFERENCE__TRITON_SSL"] = "false"
    proc = ScorerProcess(env, tmp_path / "scorer.log")
    started = time.monotonic()
    with stopped_on_exit(proc):
        proc.start()
        assert proc.proc is not None
        rc = proc.proc.wait(60)
    log = proc.log.read_text(errors="replace")
    print(f"\n{fault}: scorer exited rc={rc} after {time.monotonic() - started:.1f}s")
    assert rc == (2 if fault == "plaintext gRPC" else 1)
    assert expect in log.lower(), log[-3000:]
    # One line from the CLI, no traceback (docs/reliability.md, known limits).
    assert [line for line in log.splitlines() if line.startswith("scorer: ")], log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert wrong not in log and own_kafka.scram_password not in log
