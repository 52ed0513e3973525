"""The in-process engine of compiled trees (``inference.in_process_engine: compiled``).

A version's ``model.tl`` (the Treelite checkpoint of the same trees as ``model.onnx``) is
compiled to a shared library (:mod:`scorer.inference.compiled_build`) and scored by the C
loop of :mod:`scorer.native._trees`: 0.7-1.2 µs a row where ONNX Runtime takes 2.2-3.5
(docs/benchmarks.md section 19). ONNX Runtime stays the reference: before a library scores
anything, its scores of check rows must equal the ONNX session's (max |diff| <= 1e-5, the
same alert decisions at the version's threshold). The check rows are the version's golden
set when it carries one, and always a fixed sample that mixes the magnitudes features take
with missing values (NaN), so a library of other trees, or a miscompiled one, is refused.

Where the library comes from: the version's own ``compiled_trees.so`` when it carries one
that passes :mod:`scorer.inference.compiled_shipped`'s checks (listed in the verified
SHA256SUMS, compiled from this very ``model.tl``, built for this machine and C library),
which is how a host without a C compiler (the scorer image) scores with compiled trees;
else one compiled here (:mod:`scorer.inference.compiled_build`, cached per host). A version
the engine cannot take (no checkpoint, one not covered by SHA256SUMS, a library refused and
no compiler or tl2cgen, a failed check) is scored by ONNX Runtime: :class:`EngineUnavailable`
says why, the backend logs it and counts it (``scorer_inference_engine_fallbacks``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as PromCounter

from scorer.inference import compiled_shipped
from scorer.inference.base import FloatMatrix, FloatVector
from scorer.inference.compiled_build import CHECKPOINT, OPTIMIZE, BuildError, NoToolchain, agreement, build
from scorer.inference.repository import CHECKSUMS, ModelVersion, listed_checksums

log = logging.getLogger(__name__)

GOLDEN_FILE = "golden.npz"  # scorer.lifecycle.golden's, read here by column name
SAMPLE_ROWS = 512
SAMPLE_SEED = 0x5C0E
TOLERANCE = 1e-5


class EngineUnavailable(Exception):
    """The compiled engine cannot score a version; ``reason`` is a metric label."""

    # What the ``auto`` engine expects on some hosts and versions, not worth a WARNING: no
    # tl2cgen or compiler installed; a version without a Treelite checkpoint (not trees); the
    # vectorized engine's module not built, a CPU without AVX2, a model that is not a tree
    # ensemble or one it does not score (scorer.inference.vectorized).
    EXPECTED = frozenset({"toolchain", "no_checkpoint", "native", "cpu", "not_trees", "unsupported"})

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class CompiledTrees:
    """One version's compiled library, checked against its ONNX session. ``source``: built
    (here, or this host's cache) or version (the version's own library, dlopen()ed from the
    memory file ``fd`` holding the checked bytes: held open while it is loaded, as its path
    names the library; see compiled_shipped.memory_file). ``library``: for messages."""

    __slots__ = ("fd", "library", "scratch", "source", "trees")

    def __init__(self, library: Path, *, memory: tuple[int, str, Path | None] | None = None) -> None:
        from scorer.native._trees import Trees

        self.library, self.source = library, "built" if memory is None else "version"
        self.fd: int | None = None
        self.scratch: Path | None = None
        self.trees = Trees(str(library) if memory is None else memory[1])
        if memory is not None:  # owned from here on; a failed open leaves it to the caller
            self.fd, self.scratch = memory[0], memory[2]

    def score(self, matrix: FloatMatrix) -> FloatVector:
        out = np.empty(matrix.shape[0], dtype=np.float32)
        self.trees.score(matrix, out)
        return out

    def __del__(self) -> None:
        if self.fd is not None:
            del self.trees  # dlclose first: the path stays unique while the library is loaded
            _release(self.fd, self.scratch)


def _release(fd: int, scratch: Path | None) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


def open_compiled(version: ModelVersion, reference: Callable[[FloatMatrix], FloatVector], *,
                  cache: Path | None = None, verify: bool = True) -> CompiledTrees:
    """``version``'s compiled trees (its own library, else built or found in ``cache``),
    once they agree with ``reference`` (the version's ONNX Runtime scores) on the check rows."""
    checkpoint = version.path / CHECKPOINT
    if not checkpoint.is_file():
        raise EngineUnavailable("no_checkpoint", f"{checkpoint}: no Treelite checkpoint beside the ONNX model")
    data = checkpoint.read_bytes()
    if verify:
        _check_listed(version.path, data)
    trees, refused = _shipped(version, data, verify)
    if trees is None:
        trees = _built(checkpoint, data, cache, refused)
    n_card = len(version.card.feature_names)
    if trees.trees.n_features != n_card:
        raise EngineUnavailable("mismatch", f"{trees.library} takes {trees.trees.n_features} features, "
                                f"the card lists {n_card}")
    rows = check_rows(version, n_card)
    found = agreement(trees.score(rows), reference(rows), version.card.threshold, TOLERANCE)
    if not found.ok(TOLERANCE):
        raise EngineUnavailable("mismatch", f"{trees.library} disagrees with ONNX Runtime on {found.rows} check "
                                f"rows: max |diff| {found.max_abs_diff:.3g}, {found.decisions_differ} decisions differ")
    log.info("%s:%s scored by compiled trees: %s (%s)", version.name, version.version, trees.library,
             "the version's own" if trees.source == "version" else "compiled on this host")
    return trees


def shipped_check(version: ModelVersion, reference: Callable[[FloatMatrix], FloatVector]) -> tuple[bool, str]:
    """``scorer models validate``'s verdict on the library a version carries: (ok, detail).
    A library no scorer would load (unlisted, other bytes, another checkpoint) fails the
    version: it was released broken. One built for another platform passes with a note
    (scorers there load it, here it cannot be run); one that loads must score the check
    rows as ONNX Runtime (``reference``) does, as the engine requires before it scores."""
    name = compiled_shipped.LIBRARY
    if not (version.path / name).exists() and not (version.path / compiled_shipped.MANIFEST).exists():
        return True, f"no {name}: scorers compile {CHECKPOINT} where they can, else ONNX Runtime scores"
    checkpoint = version.path / CHECKPOINT
    if not checkpoint.is_file():
        return False, f"{name} without the {CHECKPOINT} it must be compiled from"
    trees, refused = _shipped(version, checkpoint.read_bytes(), verify=True)
    if trees is None:
        assert refused is not None  # a version carrying a library gets it loaded or a refusal
        if refused.reason == "library_platform":
            return True, f"not run here ({refused}); scorers on its platform load it after the same checks"
        return False, f"no scorer would load it ({refused.reason}): {refused}"
    n_card = len(version.card.feature_names)
    if trees.trees.n_features != n_card:
        return False, f"{name} takes {trees.trees.n_features} features, the card lists {n_card}"
    rows = check_rows(version, n_card)
    found = agreement(trees.score(rows), reference(rows), version.card.threshold, TOLERANCE)
    return found.ok(TOLERANCE), (f"{name} against ONNX "
                                 f"Runtime on {found.rows} check rows: max |diff| {found.max_abs_diff:.3g}, "
                                 f"{found.decisions_differ} decisions differ (tolerance {TOLERANCE:g})")


def _shipped(version: ModelVersion, checkpoint: bytes,
             verify: bool) -> tuple[CompiledTrees | None, compiled_shipped.Refused | None]:
    """The version's own library, loaded once it passes compiled_shipped's checks; else
    (None, why it was refused), or (None, None) when the version carries none. Never loaded
    from a version whose checksums were not verified: nothing would vouch for it."""
    if not verify:
        return None, None
    path = version.path / compiled_shipped.LIBRARY
    try:
        found = compiled_shipped.verified_library(version.path, checkpoint, listed_checksums(version.path))
        if found is None:
            return None, None
        library, manifest = found
        try:
            memory = compiled_shipped.memory_file(library, f"{version.name}-{version.version}")
        except OSError as exc:
            raise compiled_shipped.Refused("open", f"{path}: {exc}") from None
        try:
            trees = CompiledTrees(path, memory=memory)
        except (OSError, ValueError, ImportError) as exc:
            _release(memory[0], memory[2])
            raise compiled_shipped.Refused("open", f"{path}: unusable: {exc}") from None
    except compiled_shipped.Refused as exc:
        log.warning("%s:%s: not loading the library the version carries (%s): %s", version.name,
                    version.version, exc.reason, exc)
        return None, exc
    log.debug("%s:%s: %s built by %s %s for %s %s %s", version.name, version.version, compiled_shipped.LIBRARY,
              manifest.compiler, " ".join(manifest.flags), manifest.machine, manifest.libc, manifest.libc_version)
    return trees, None


def _built(checkpoint: Path, data: bytes, cache: Path | None,
           refused: compiled_shipped.Refused | None) -> CompiledTrees:
    """The library compiled on this host (or its cached build). Where the version's own
    library was refused and nothing can be built, the refusal is the reason reported."""
    try:
        return CompiledTrees(build(data, cache, OPTIMIZE))
    except NoToolchain as exc:
        if refused is not None:
            raise EngineUnavailable(refused.reason, f"{refused}; and cannot compile here: {exc}") from None
        raise EngineUnavailable("toolchain", f"{checkpoint}: {exc}, and the version carries no "
                                f"{compiled_shipped.LIBRARY} (scorer models package writes one)") from None
    except BuildError as exc:
        raise EngineUnavailable("build", f"{checkpoint}: {exc}") from None
    except (OSError, ValueError, ImportError) as exc:
        raise EngineUnavailable("open", f"{checkpoint}: compiled library unusable: {exc}") from None


def _check_listed(version_dir: Path, data: bytes) -> None:
    """``data`` (the checkpoint as read for the build) is what SHA256SUMS records."""
    digest = listed_checksums(version_dir).get(CHECKPOINT)
    if digest is None:
        raise EngineUnavailable("integrity", f"{version_dir}: {CHECKSUMS} does not cover {CHECKPOINT}")
    if hashlib.sha256(data).hexdigest() != digest:
        raise EngineUnavailable("integrity", f"{version_dir / CHECKPOINT}: sha256 does not match {CHECKSUMS}")


def check_rows(version: ModelVersion, n_features: int) -> FloatMatrix:
    """The version's golden rows in its card's column order (when it carries a golden set
    holding them), then the fixed sample."""
    parts = [sample_rows(n_features)]
    golden = version.path / GOLDEN_FILE
    if golden.is_file():
        try:
            with np.load(golden, allow_pickle=False) as z:
                index = {str(n): i for i, n in enumerate(z["feature_names"].tolist())}
                if all(n in index for n in version.card.feature_names):
                    columns = [index[n] for n in version.card.feature_names]
                    parts.insert(0, np.asarray(z["features"], np.float32)[:, columns])
        except (OSError, KeyError, ValueError, IndexError):
            pass  # not a golden set this code reads: the fixed sample still checks the library
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def sample_rows(n_features: int, n: int = SAMPLE_ROWS) -> FloatMatrix:
    """Deterministic rows reaching both sides of most splits: flags, ratios, small signed
    values, counts and sizes over six decades, log-scaled values, and one cell in eight
    missing (the same mix as the C++ backend's check rows, treelite_backend/compiled_model.cc)."""
    rng = np.random.default_rng(SAMPLE_SEED)
    u = rng.random((n, n_features))
    mix = np.stack([np.full_like(u, np.nan), np.floor(u * 3), u, u * 20 - 2, 10 ** (u * 6 - 1), u * 10])
    pick = rng.integers(0, 8, size=(n, n_features)).clip(max=len(mix) - 1)
    return np.ascontiguousarray(np.take_along_axis(mix, pick[None], 0)[0], dtype=np.float32)


class EngineMetrics:
    """Which engine scores each loaded version, and the versions an engine refused (``engine``
    and ``reason``: compiled's toolchain, no_checkpoint, integrity, build, open, mismatch, and,
    where the version's own library was refused and none could be built here, library_integrity,
    library_model or library_platform; vectorized's in scorer.inference.vectorized). Created
    unregistered: the service registers them with its registry (:meth:`register`)."""

    def __init__(self) -> None:
        self.engine = Gauge("scorer_inference_engine", "1 per loaded model version and the in-process "
                            "engine scoring it (onnxruntime | vectorized | compiled)", ["model", "version", "engine"],
                            registry=None)
        self.fallbacks = PromCounter("scorer_inference_engine_fallbacks", "Versions an in-process engine could "
                                     "not take (the next engine, or ONNX Runtime, scores them)",
                                     ["model", "engine", "reason"], registry=None)

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(self.engine)
        registry.register(self.fallbacks)

    def loaded(self, version: ModelVersion, engine: str) -> None:
        self.engine.labels(version.name, version.version, engine).set(1)

    def unloaded(self, version: ModelVersion, engine: str) -> None:
        with contextlib.suppress(KeyError):  # never set: a load that failed
            self.engine.remove(version.name, version.version, engine)
