"""Session-wide real services, started only when a test asks for them, and the markers
that say so.

``kafka``: one Apache Kafka 4.x broker (KRaft) for the whole session; each test uses its
own topics. ``triton``: one tritonserver over model_repository/ (python-backend shim over
the same ONNX files). Both are the real programs, see deploy/local/. A test that needs a
broker or a server of its own starts it with ``start_kafka`` / ``start_triton``.

Markers (pyproject.toml, ``--strict-markers``): a test using any of these fixtures, directly
or through another fixture, is marked ``kafka`` / ``triton`` (and ``integration``) at
collection (tests/support/markers.py); ``data`` and ``slow`` are set by hand.

``SCORER_STRICT_SKIPS=1`` (set by ``.ci/run``) turns every skip into a failure, except the
opt-in ones whose reason says "runs only with": a CI run with the data folder, chromium or
a model missing must not pass by skipping the tests that need them.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator

import pytest

from tests.support import markers
from tests.support.kafka import KafkaBroker, StartKafka
from tests.support.paths import DATA_DIR, MODEL_REPOSITORY
from tests.support.triton import StartTriton, TritonServer

# The service's default in-process engine (auto) compiles each model version's trees the first
# time a host meets the version (seconds each, then cached): the suite trains and loads many
# versions, so it scores with ONNX Runtime unless a test names an engine (tests/inference/
# test_compiled*.py do, and check the default itself). Subprocesses inherit it.
os.environ.setdefault("SCORER_INFERENCE__IN_PROCESS_ENGINE", "onnxruntime")


@pytest.fixture(scope="session")
def start_kafka() -> StartKafka:
    """:meth:`KafkaBroker.start` (the caller stops the broker): the one way a test gets a
    broker, so using it is what marks the test ``kafka``."""
    return KafkaBroker.start


@pytest.fixture(scope="session")
def start_triton() -> StartTriton:
    """:meth:`TritonServer.start` (the caller stops the server); marks the test ``triton``."""
    return TritonServer.start


@pytest.fixture(scope="session")
def kafka(start_kafka: StartKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = start_kafka(workdir=tmp_path_factory.mktemp("kafka"))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def triton(start_triton: StartTriton, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    server = start_triton(repository=MODEL_REPOSITORY, workdir=tmp_path_factory.mktemp("triton"))
    try:
        yield server
    finally:
        server.stop()


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for name in sorted(markers.markers_for(getattr(item, "fixturenames", ()))):
            item.add_marker(name)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items[:] = markers.heavy_modules_first(items)


@pytest.hookimpl(tryfirst=True)  # before the fixtures are set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    # What the service launchers check: fixtures of any scope start inside a test's setup.
    markers.set_current(m.name for m in item.iter_markers())
    if item.get_closest_marker("data") is not None and not DATA_DIR.is_dir():
        pytest.skip(f"shared data folder not present at {DATA_DIR} (set SCORER_DATA_DIR)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    yield
    markers.set_current(None)


OPT_IN = "runs only with"
# Scripts run as subprocesses by tests; importing them (--doctest-modules does) runs them.
collect_ignore = ["streams/faust_probe.py"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not report.skipped or hasattr(report, "wasxfail") or os.environ.get("SCORER_STRICT_SKIPS") != "1":
        return report
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if OPT_IN not in reason:
        report.outcome = "failed"
        report.longrepr = f"skipped under SCORER_STRICT_SKIPS=1: {reason}"
    return report
