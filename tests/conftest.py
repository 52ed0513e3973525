"""Session-wide real services, started only when a test asks for them.

``kafka``: one Apache Kafka 4.x broker (KRaft) for the whole session; each test uses its
own topics. ``triton``: one tritonserver over model_repository/ (python-backend shim over
the same ONNX files). Both are the real programs, see deploy/local/.

``SCORER_STRICT_SKIPS=1`` (set by ``.ci/run``) turns every skip into a failure, except the
opt-in ones whose reason says "runs only with": a CI run with the data folder, chromium or
a model missing must not pass by skipping the tests that need them.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator

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


OPT_IN = "runs only with"
# Scripts run as subprocesses by tests; importing them (--doctest-modules does) runs them.
collect_ignore = ["streams/faust_probe.py"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail") or os.environ.get("SCORER_STRICT_SKIPS") != "1":
        return
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if OPT_IN not in reason:
        report.outcome = "failed"
        report.longrepr = f"skipped under SCORER_STRICT_SKIPS=1: {reason}"
