"""The three-broker cluster of the cluster fault tests: one per module (a start takes about a
minute on the shared machine). Opt-in, because the suite takes many minutes:
``SCORER_CLUSTER_TESTS=1`` runs it; CI leaves it out (docs/reliability.md has its results
and the commit they ran on).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cluster import KafkaCluster

OPT_IN = "SCORER_CLUSTER_TESTS"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get(OPT_IN) == "1":
        return
    skip = pytest.mark.skip(reason=f"runs only with {OPT_IN}=1 (three brokers, minutes per test)")
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def start_cluster() -> Callable[..., KafkaCluster]:
    """:meth:`KafkaCluster.start` (the caller stops it); marks the test ``kafka``."""
    return KafkaCluster.start


@pytest.fixture(scope="module")
def cluster(
    start_cluster: Callable[..., KafkaCluster], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaCluster]:
    started = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield started
    finally:
        started.stop()
