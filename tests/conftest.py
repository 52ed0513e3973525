"""Session-wide real services, started only when a test asks for them.

``kafka``: one Apache Kafka 4.x broker (KRaft) for the whole session; each test uses its
own topics. ``triton``: one tritonserver over model_repository/ (python-backend shim over
the same ONNX files). Both are the real programs, see deploy/local/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.kafka import KafkaBroker
from tests.support.paths import MODEL_REPOSITORY
from tests.support.triton import TritonServer


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = KafkaBroker.start(workdir=tmp_path_factory.mktemp("kafka"))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    server = TritonServer.start(repository=MODEL_REPOSITORY, workdir=tmp_path_factory.mktemp("triton"))
    try:
        yield server
    finally:
        server.stop()
