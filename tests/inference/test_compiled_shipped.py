"""A model version's own compiled trees (``compiled_trees.so``, scorer.inference.compiled_shipped):
on a host with neither tl2cgen nor a C compiler (the scorer image), the compiled engine scores with
the library the version carries, exactly as ONNX Runtime does on the capture's real rows; a
library that does not provably belong to the version's ``model.tl`` and this host (not
listed in SHA256SUMS, other bytes than its manifest names, another checkpoint, another
machine, a newer glibc, another ABI) is never dlopen()ed, and the version is compiled here
where it can be, else scored by ONNX Runtime with a WARNING and a metric naming why.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from scorer.inference import compiled_build, compiled_shipped
from scorer.inference.base import ModelRef
from scorer.inference.compiled import CompiledTrees, shipped_check
from scorer.inference.compiled_build import CHECKPOINT, agreement
from scorer.inference.compiled_shipped import LIBRARY, MANIFEST, Refused
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.inference.repository import listed_checksums, load_version, write_checksums
from tests.deploy import test_gpu_compiled
from tests.support.paths import MODEL_REPOSITORY

NETFLOW, SIEM = "netflow_classifier", "siem_classifier"
capture = test_gpu_compiled.capture  # the bundled capture's feature rows per model, as the scorer computes them


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """netflow and siem v1 with their libraries added, as ``build.sh models`` does."""
    repo = tmp_path_factory.mktemp("packaged")
    for model in (NETFLOW, SIEM):
        shutil.copytree(MODEL_REPOSITORY / model, repo / model)
        assert compiled_shipped.main(["add", str(repo / model / "1")]) == 0
    return repo


@pytest.fixture
def repo(packaged: Path, tmp_path: Path) -> Path:
    shutil.copytree(packaged, tmp_path / "repo")
    return tmp_path / "repo"


def _take_the_toolchain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As in the scorer image: no C compiler, no tl2cgen."""
    def missing() -> str:
        raise ImportError("No module named 'tl2cgen'")

    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setattr(compiled_build, "tl2cgen_version", missing)


@pytest.fixture
def no_toolchain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _take_the_toolchain(monkeypatch, tmp_path)


def _backend(repo: Path, cache: Path, engine: Any = "compiled") -> tuple[OnnxRuntimeBackend, CollectorRegistry]:
    backend = OnnxRuntimeBackend(repo, engine=engine, compiled_cache=cache)
    registry = CollectorRegistry()
    backend.metrics.register(registry)
    return backend, registry


def _reference(model: str, x: Any) -> Any:
    return OnnxRuntimeBackend._run(OnnxRuntimeBackend(MODEL_REPOSITORY).load(ModelRef(model)), x)


@pytest.mark.usefixtures("no_toolchain")
async def test_without_a_compiler_the_version_s_library_scores_as_onnx_runtime(repo: Path, tmp_path: Path,
                                                                              capture: Any) -> None:
    backend, registry = _backend(repo, tmp_path / "cache")
    for model in (NETFLOW, SIEM):  # two libraries loaded at once, each from its own memory file
        assert backend.engine_of(ModelRef(model)) == "compiled"
        trees = backend.load(ModelRef(model)).trees
        assert isinstance(trees, CompiledTrees)
        assert trees.source == "version" and trees.library == repo / model / "1" / LIBRARY
        assert registry.get_sample_value("scorer_inference_engine",
                                         {"model": model, "version": "1", "engine": "compiled"}) == 1
    for model in (NETFLOW, SIEM):
        threshold = backend.card(ModelRef(model)).threshold
        x = np.ascontiguousarray(capture[model], np.float32)
        holed = x.copy()
        holed[np.random.default_rng(7).random(x.shape) < 0.3] = np.nan
        for rows in (x, holed):
            found = agreement(await backend.infer(ModelRef(model), rows), _reference(model, rows), threshold)
            assert found.rows == len(rows) > 1000 and found.ok(), found
    assert not (tmp_path / "cache").exists(), "nothing was compiled"
    loaded = [backend.load(ModelRef(m)).trees for m in (NETFLOW, SIEM)]
    assert all(isinstance(trees, CompiledTrees) and trees.fd is not None and trees.scratch is None
               and Path(f"/proc/self/fd/{trees.fd}").exists() for trees in loaded)
    backend.unload(ModelRef(NETFLOW))  # its memory file closes; a reload gets a fresh one
    assert backend.engine_of(ModelRef(NETFLOW)) == "compiled"
    x = np.ascontiguousarray(capture[NETFLOW][:500], np.float32)
    assert agreement(await backend.infer(ModelRef(NETFLOW), x), _reference(NETFLOW, x), 0.5).ok()


def _edit_manifest(**fields: str) -> Callable[[Path], None]:
    def edit(version: Path) -> None:
        manifest = msgspec.json.decode((version / MANIFEST).read_bytes())
        (version / MANIFEST).write_bytes(msgspec.json.encode({**manifest, **fields}))
        write_checksums(version)
    return edit


def _siem_library_as_netflow_s(keep_manifest: bool) -> Callable[[Path], None]:
    def swap(version: Path) -> None:
        siem = version.parent.parent / SIEM / "1"
        shutil.copy(siem / LIBRARY, version / LIBRARY)
        if not keep_manifest:
            shutil.copy(siem / MANIFEST, version / MANIFEST)
        write_checksums(version)
    return swap


def _unlisted(version: Path) -> None:
    sums = version / "SHA256SUMS"
    sums.write_text("".join(f"{line}\n" for line in sums.read_text().splitlines() if not line.endswith(LIBRARY)))


CHANGES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "not listed in SHA256SUMS": (_unlisted, "library_integrity", "not listed in SHA256SUMS"),
    "another library, same manifest": (_siem_library_as_netflow_s(True), "library_integrity",
                                       "not the library compiled_trees.json describes"),
    "another model's library and manifest": (_siem_library_as_netflow_s(False), "library_model",
                                             "compiled from another checkpoint"),
    "another machine": (_edit_manifest(machine="aarch64"), "library_platform", "built for aarch64"),
    "a newer glibc": (_edit_manifest(libc_version="2.99"), "library_platform", "newer than this host's"),
    "another C library": (_edit_manifest(libc="musl"), "library_platform", "built against musl"),
    "another ABI": (_edit_manifest(abi="tl2cgen-2"), "library_platform", "'tl2cgen-2' ABI"),
    "another tl2cgen": (_edit_manifest(tl2cgen="2.0.0"), "library_platform", "by tl2cgen 2.0.0"),
}


@pytest.mark.usefixtures("no_toolchain")
@pytest.mark.parametrize("change", CHANGES)
async def test_a_library_that_does_not_belong_is_refused_and_onnx_runtime_scores(
    change: str, repo: Path, tmp_path: Path, capture: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    edit, reason, said = CHANGES[change]
    edit(repo / NETFLOW / "1")
    backend, registry = _backend(repo, tmp_path / "cache")
    with caplog.at_level(logging.INFO):
        assert backend.engine_of(ModelRef(NETFLOW)) == "onnxruntime"
    assert registry.get_sample_value("scorer_inference_engine_fallbacks_total",
                                     {"model": NETFLOW, "engine": "compiled", "reason": reason}) == 1
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("not loading the library the version carries" in m and said in m for m in warned), warned
    assert any("not scored by the compiled engine" in m and "cannot compile here" in m for m in warned)
    x = capture[NETFLOW]
    assert np.array_equal(await backend.infer(ModelRef(NETFLOW), x), _reference(NETFLOW, x))


async def test_a_refused_library_is_compiled_here_where_a_compiler_is(repo: Path, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    _edit_manifest(machine="aarch64")(repo / NETFLOW / "1")
    backend, _ = _backend(repo, tmp_path / "cache", "compiled")
    with caplog.at_level(logging.WARNING):
        trees = backend.load(ModelRef(NETFLOW)).trees
    assert isinstance(trees, CompiledTrees) and trees.source == "built" and (tmp_path / "cache").is_dir()
    assert any("built for aarch64" in r.getMessage() for r in caplog.records)


def _constructor_library(tmp_path: Path, marker: Path) -> bytes:
    """A shared library whose load alone creates ``marker``: code that would run in the
    scorer the moment dlopen() maps it, before any check of its scores."""
    source = tmp_path / "ctor.c"
    source.write_text('#include <stdio.h>\n__attribute__((constructor)) static void ran(void) {\n'
                      f'  FILE *f = fopen("{marker}", "w"); if (f) fclose(f);\n}}\n')
    subprocess.run([compiled_build.compiler(), "-shared", "-fPIC", "-o", str(tmp_path / "ctor.so"), str(source)],
                   check=True)
    return (tmp_path / "ctor.so").read_bytes()


@pytest.mark.parametrize("fits", [False, True])
def test_a_refused_library_is_never_loaded(fits: bool, repo: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Its manifest names its bytes and the checkpoint, but another machine: its code never
    runs. The control (``fits``: this machine) shows the same library does run when loaded,
    and is then refused as no tl2cgen library."""
    version, marker = repo / NETFLOW / "1", tmp_path / "constructor-ran"
    data = _constructor_library(tmp_path, marker)
    version.joinpath(LIBRARY).write_bytes(data)
    _edit_manifest(library_sha256=hashlib.sha256(data).hexdigest(),
                   machine=compiled_shipped.host()[0] if fits else "riscv64")(version)
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    backend, registry = _backend(repo, tmp_path / "cache", "compiled")
    assert backend.engine_of(ModelRef(NETFLOW)) == "onnxruntime"
    assert marker.exists() is fits
    assert registry.get_sample_value("scorer_inference_engine_fallbacks_total",
                                     {"model": NETFLOW, "engine": "compiled",
                                      "reason": "open" if fits else "library_platform"}) == 1


def test_the_checks_are_on_the_bytes_read(repo: Path) -> None:
    """A library rewritten after its version verified (so SHA256SUMS no longer holds for it)."""
    version = repo / NETFLOW / "1"
    checkpoint, listed = (version / CHECKPOINT).read_bytes(), listed_checksums(version)
    assert compiled_shipped.verified_library(version, checkpoint, listed) is not None
    with pytest.raises(Refused, match="another checkpoint"):
        compiled_shipped.verified_library(version, checkpoint + b"\0", listed)
    data = bytearray((version / LIBRARY).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (version / LIBRARY).write_bytes(bytes(data))
    with pytest.raises(Refused, match="sha256 does not match SHA256SUMS") as refused:
        compiled_shipped.verified_library(version, checkpoint, listed)
    assert refused.value.reason == "library_integrity"


@pytest.mark.usefixtures("no_toolchain")
def test_an_unverified_version_s_library_is_not_loaded(repo: Path, tmp_path: Path) -> None:
    backend = OnnxRuntimeBackend(repo, engine="compiled", compiled_cache=tmp_path / "cache", verify=False)
    assert backend.engine_of(ModelRef(NETFLOW)) == "onnxruntime"


def test_a_version_without_a_library_is_not_refused(tmp_path: Path) -> None:
    assert compiled_shipped.verified_library(MODEL_REPOSITORY / NETFLOW / "1", b"", {}) is None


@pytest.mark.usefixtures("no_toolchain")
async def test_without_proc_the_checked_bytes_load_from_a_private_file(repo: Path, tmp_path: Path, capture: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A bare chroot has no /proc: the library is written to a fresh 0700 directory, loaded
    from there, and the directory goes when the version is unloaded."""
    monkeypatch.setattr(compiled_shipped, "PROC_FDS", str(tmp_path / "no-proc"))
    backend = OnnxRuntimeBackend(repo, engine="compiled", compiled_cache=tmp_path / "cache")
    trees = backend.load(ModelRef(NETFLOW)).trees
    assert isinstance(trees, CompiledTrees) and trees.source == "version" and trees.scratch is not None
    scratch = trees.scratch
    assert (scratch.stat().st_mode & 0o777) == 0o700 and (scratch / LIBRARY).read_bytes() == (
        repo / NETFLOW / "1" / LIBRARY).read_bytes()
    x = np.ascontiguousarray(capture[NETFLOW], np.float32)
    assert agreement(await backend.infer(ModelRef(NETFLOW), x), _reference(NETFLOW, x), 0.5).ok()
    del trees
    backend.unload(ModelRef(NETFLOW))
    assert not scratch.exists()


def _onnx_scores(version: Path) -> Callable[[Any], Any]:
    from scorer.lifecycle.validate import scores

    return lambda rows: scores(version / "model.onnx", rows)


def test_validate_passes_a_library_that_scores_as_its_onnx_model(repo: Path) -> None:
    ok, detail = shipped_check(load_version(repo, NETFLOW, "1"), _onnx_scores(repo / NETFLOW / "1"))
    assert ok and "0 decisions differ" in detail, detail
    ok, detail = shipped_check(load_version(MODEL_REPOSITORY, NETFLOW, "1"), _onnx_scores(repo / NETFLOW / "1"))
    assert ok and detail.startswith(f"no {LIBRARY}"), detail


@pytest.mark.parametrize("change", CHANGES)
def test_validate_fails_a_library_no_scorer_would_load(change: str, repo: Path) -> None:
    """What the engine refuses, validate fails, but for a library of another platform: scorers
    there load it (after the same checks), so the version is not broken, only not run here."""
    edit, reason, said = CHANGES[change]
    edit(repo / NETFLOW / "1")
    ok, detail = shipped_check(load_version(repo, NETFLOW, "1"), _onnx_scores(repo / NETFLOW / "1"))
    assert ok is (reason == "library_platform") and said in detail, detail
    assert ("not run here" if ok else f"no scorer would load it ({reason})") in detail


def test_validate_fails_a_library_that_scores_otherwise(repo: Path, tmp_path: Path) -> None:
    """One that loads but whose scores are not the reference's; and one that is no tl2cgen
    library at all (its manifest forged to match)."""
    version = load_version(repo, NETFLOW, "1")
    onnx = _onnx_scores(version.path)
    ok, detail = shipped_check(version, lambda rows: onnx(rows) + np.float32(0.25))
    assert not ok and "decisions differ" in detail and "max |diff| 0.25" in detail, detail
    data = _constructor_library(tmp_path, tmp_path / "ran")
    version.path.joinpath(LIBRARY).write_bytes(data)
    _edit_manifest(library_sha256=hashlib.sha256(data).hexdigest())(version.path)
    ok, detail = shipped_check(load_version(repo, NETFLOW, "1"), onnx)
    assert not ok and "no scorer would load it (open)" in detail, detail
