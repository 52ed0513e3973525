"""The tiny-model repository and the tritonserver serving it, one of each per test module
(the version tests add and retire versions, so modules do not share them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.models import TinyModel, build_tiny_model, publish_tiny_model
from tests.support.triton import StartTriton, TritonServer

N_FEATURES = 12


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TinyModel]:
    """``tiny`` v1, the model the tests score, and ``rollout`` v1, one the version tests change."""
    repo = tmp_path_factory.mktemp("model_repository")
    tiny = build_tiny_model("tiny", "1", n_features=N_FEATURES)
    publish_tiny_model(repo, tiny)
    publish_tiny_model(repo, build_tiny_model("rollout", "1", n_features=N_FEATURES, seed=1))
    return repo, tiny


@pytest.fixture(scope="module")
def server(
    repository: tuple[Path, TinyModel], tmp_path_factory: pytest.TempPathFactory, start_triton: StartTriton,
) -> Iterator[TritonServer]:
    server = start_triton(repository[0], tmp_path_factory.mktemp("triton"))
    print(f"\ntritonserver ready in {server.start_seconds:.2f}s")
    yield server
    server.stop()
