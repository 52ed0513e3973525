"""Fixtures of the fault tests: services that a test may stop, restart or reconfigure.

The session ``kafka`` and ``triton`` (tests/conftest.py) are shared with every other test,
so nothing here stops them: a test that takes a service down gets its own instance.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kafka import KafkaBroker, StartKafka
from tests.support.paths import MODEL_REPOSITORY
from tests.support.triton import StartTriton, TritonServer


@pytest.fixture
def model_repository(tmp_path: Path) -> Path:
    """A private copy of model_repository/ (a test may tamper with it or serve it)."""
    repo = tmp_path / "model_repository"
    shutil.copytree(MODEL_REPOSITORY, repo)
    return repo


@pytest.fixture
def own_triton(model_repository: Path, tmp_path: Path, start_triton: StartTriton) -> Iterator[TritonServer]:
    """A tritonserver only this test talks to, so stopping it hurts nobody else."""
    server = start_triton(model_repository, tmp_path / "triton")
    print(f"\nprivate tritonserver ready in {server.start_seconds:.1f}s")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def own_kafka(tmp_path_factory: pytest.TempPathFactory, start_kafka: StartKafka) -> Iterator[KafkaBroker]:
    """A broker of the fault tests alone: they restart and kill it; it also has a SASL_SSL listener."""
    # PLAIN beside SCRAM on the SASL_SSL listener: PLAIN sends the password itself inside
    # the (TLS-protected) authenticate request, the case most likely to leak into a log.
    plain = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
             f'user_{KafkaBroker.scram_user}="{KafkaBroker.scram_password}";')
    broker = start_kafka(
        workdir=tmp_path_factory.mktemp("own-kafka"), sasl_ssl=True,
        extra_props={
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
            "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
            "listener.name.sasl_ssl.plain.sasl.jaas.config": plain,
        },
    )
    try:
        yield broker
    finally:
        broker.stop()
