"""After a Triton restart the scorer reloads what it serves, checking the files again first."""

from __future__ import annotations

from scorer.inference.base import ModelRef
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.lifecycle.loader import RuntimeLoader
from tests.support.lifecycle import MODEL, Repo


class RestartedTriton:
    """A Triton that lost its models (restarted): serves nothing, records what it is asked to load."""

    def __init__(self) -> None:
        self.loaded: list[ModelRef] = []

    async def ready(self, ref: ModelRef) -> bool:
        return ref in self.loaded

    async def load_model(self, name: str, version: str) -> None:
        self.loaded.append(ModelRef(name, version))


def _loader(repo: Repo) -> tuple[RuntimeLoader, RestartedTriton]:
    loader = RuntimeLoader(repo.path, OnnxRuntimeBackend(repo.path), sync_command=[])
    triton = RestartedTriton()
    loader.triton = triton  # type: ignore[assignment]
    return loader, triton


async def test_a_restarted_triton_gets_production_back(repo: Repo) -> None:
    loader, triton = _loader(repo)
    ref = ModelRef(MODEL, "1")
    assert await loader.ensure_served([ref]) == [ref]
    assert triton.loaded == [ref]
    assert await loader.ensure_served([ref]) == [], "served now: nothing to do"


async def test_files_changed_since_install_are_not_reloaded(repo: Repo) -> None:
    loader, triton = _loader(repo)
    onnx = repo.path / MODEL / "1" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\0")  # tampered on disk while it was being served
    assert await loader.ensure_served([ModelRef(MODEL, "1")]) == []
    assert triton.loaded == [], "Triton must not be asked to load files that fail their checksums"
