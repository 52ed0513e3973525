"""In-process ONNX Runtime backend: the embedded default, and the fallback when Triton is down.

Each model version is loaded from the model repository through
:func:`scorer.inference.repository.load_version`, so its SHA256SUMS are verified before
onnxruntime ever parses the file; a tampered model raises IntegrityError and is not served.

Threading: calls of at least ``offload_rows`` rows run in a worker thread, where
onnxruntime releases the GIL; smaller ones run inline on the event loop. The shipped models
are tree ensembles costing 1-4 us per row; ``asyncio.to_thread`` adds ~40-60 us per call,
and the thread must win the GIL back from the feature code (up to the 5 ms switch interval)
to return. BatchScorer starts each kind's inference as soon as its features are ready, so
an offloaded call can overlap the next kind's features on a spare core. On the 2-core dev
box, shared with the broker, there is none: drains of 60,000 events ran at 39-43k events/s
offloading from 1,024 rows and 43-45k inline, hence the default (``inference.offload_rows``
= 65,536) keeps pipeline batches inline; set it to ~1,024 where cores are spare.

Engine (``inference.in_process_engine``): ``onnxruntime`` scores with the session;
``vectorized`` with the version's tree ensemble read into :mod:`scorer.inference.vectorized`
(16 rows a compare with AVX-512, 8 with AVX2; no compiler, no library), ``compiled`` with
its trees compiled to C (:mod:`scorer.inference.compiled`); both are cheaper a row than the
session (docs/benchmarks.md sections 19 and 39) and must agree with it on check rows at load.
A version the asked engine cannot score is scored by the session, with a WARNING and
``scorer_inference_engine_fallbacks``. ``auto`` (the service's default) tries ``vectorized``,
then ``compiled``, then the session: a reason a host may expect there (no AVX2, no tl2cgen or
compiler, a model that is not trees) is an INFO line, any other a WARNING; each engine that
could not take a version counts it under its name.
Either way a version is scored by one engine from its load to its unload: replaying the same
events gives the same scores.
The backend's name (what alerts say scored them) is ``onnxruntime`` with every engine: the
same version, the same scores within 1e-5, the same decisions; the gauge
``scorer_inference_engine`` says which engine scores each loaded version.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from scorer.errors import InferenceError, ModelError
from scorer.inference.base import INPUT_NAME, OUTPUT_NAME, FloatMatrix, FloatVector, InferenceBackend, ModelRef
from scorer.inference.compiled import CompiledTrees, EngineMetrics, EngineUnavailable, open_compiled
from scorer.inference.repository import ModelCard, ModelVersion, list_versions, load_version
from scorer.inference.vectorized import VectorizedTrees, open_vectorized

log = logging.getLogger(__name__)

DEFAULT_OFFLOAD_ROWS = 65_536
Engine = Literal["auto", "onnxruntime", "compiled", "vectorized"]
# The engines ``auto`` tries, in order, before the session.
AUTO: tuple[Engine, ...] = ("vectorized", "compiled")


class _Loaded:
    """One verified model version and its session."""

    __slots__ = ("engine", "n_features", "session", "trees", "version")

    def __init__(self, version: ModelVersion, session: ort.InferenceSession) -> None:
        self.version = version
        self.session = session
        self.trees: CompiledTrees | VectorizedTrees | None = None  # set once checked: then they score
        self.engine: Engine = "onnxruntime"  # the engine of ``trees``
        shape = session.get_inputs()[0].shape
        self.n_features = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None


class OnnxRuntimeBackend(InferenceBackend):
    """The InferenceBackend protocol, scoring in this process with onnxruntime (CPU)."""

    name = "onnxruntime"

    def __init__(
        self,
        repository: Path,
        models: list[ModelRef] | None = None,
        *,
        intra_op_threads: int = 1,
        offload_rows: int = DEFAULT_OFFLOAD_ROWS,
        verify: bool = True,
        engine: Engine = "onnxruntime",
        compiled_cache: Path | None = None,
    ) -> None:
        """``models`` are loaded by :meth:`start`; any other model loads on first use.

        ``intra_op_threads`` defaults to 1: the scorer scales by processes (one consumer
        each), and a per-process thread pool would fight them for cores. ``compiled_cache``:
        where the compiled engine keeps its libraries (None: the per-user default).
        """
        self.repository = repository
        self._wanted = list(models or [])
        self._intra_op_threads = intra_op_threads
        self._offload_rows = offload_rows
        self._verify = verify
        self.engine = engine
        self._compiled_cache = compiled_cache
        self.metrics = EngineMetrics()
        self._loaded: dict[tuple[str, str], _Loaded] = {}
        # A subclass that scores otherwise (its own infer) is awaited, never run in line.
        self._inline = type(self).infer is OnnxRuntimeBackend.infer and \
            type(self).infer_with_source is InferenceBackend.infer_with_source

    async def start(self) -> None:
        for ref in self._wanted:
            self.load(ref)

    async def close(self) -> None:
        for loaded in self._loaded.values():
            self.metrics.unloaded(loaded.version, loaded.engine)
        self._loaded.clear()

    async def ready(self, model: ModelRef) -> bool:
        try:
            self.load(model)
        except ModelError:
            return False
        return True

    async def infer(self, model: ModelRef, features: FloatMatrix) -> FloatVector:
        loaded = self.load(model)
        matrix = np.ascontiguousarray(features, dtype=np.float32)
        if matrix.shape[0] >= self._offload_rows:
            return await asyncio.to_thread(self._run, loaded, matrix)
        return self._run(loaded, matrix)

    def infer_now(self, model: ModelRef, features: FloatMatrix) -> tuple[FloatVector, str] | None:
        """:meth:`infer` in line below ``offload_rows`` (what it does there without suspending);
        None for a call it hands to a thread."""
        if not self._inline or features.shape[0] >= self._offload_rows:
            return None  # (before the look-up and the copy: infer() makes them again)
        return self._run(self.load(model), np.ascontiguousarray(features, dtype=np.float32)), self.name

    def card(self, model: ModelRef) -> ModelCard:
        """The card of the version that scores ``model`` (thresholds, feature names)."""
        return self.load(model).version.card

    def model_version(self, model: ModelRef) -> ModelVersion:
        return self.load(model).version

    def load(self, model: ModelRef) -> _Loaded:
        """The session for ``model``, loading (and verifying) it on first use.

        ``version=""`` means the highest version in the repository at first use; it stays
        pinned until :meth:`unload` so scores don't change mid-stream.
        """
        key = (model.name, model.version)
        loaded = self._loaded.get(key)
        if loaded is None:
            loaded = self._open(load_version(self.repository, model.name, model.version,
                                             verify=self._verify))
            self._loaded[key] = loaded
        return loaded

    def unload(self, model: ModelRef) -> None:
        """Drop the session (its memory goes with the last reference); a later use loads it again."""
        loaded = self._loaded.pop((model.name, model.version), None)
        if loaded is not None and not any(o.version == loaded.version and o.engine == loaded.engine
                                          for o in self._loaded.values()):
            self.metrics.unloaded(loaded.version, loaded.engine)

    def engine_of(self, model: ModelRef) -> Engine:
        """The engine scoring ``model`` (loading it on first use)."""
        return self.load(model).engine

    def loaded(self) -> list[ModelRef]:
        """The versions holding a session now."""
        return [ModelRef(name, version) for name, version in self._loaded]

    def versions(self, name: str) -> list[str]:
        return list_versions(self.repository, name)

    def _open(self, version: ModelVersion) -> _Loaded:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            session = ort.InferenceSession(
                str(version.onnx_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise ModelError(f"{version.onnx_path}: onnxruntime cannot load it: {exc}") from None
        names_in = [i.name for i in session.get_inputs()]
        names_out = [o.name for o in session.get_outputs()]
        if INPUT_NAME not in names_in or OUTPUT_NAME not in names_out:
            raise ModelError(
                f"{version.onnx_path}: needs input {INPUT_NAME!r} and output {OUTPUT_NAME!r}, "
                f"has {names_in} -> {names_out}"
            )
        loaded = _Loaded(version, session)
        n_card = len(version.card.feature_names)
        if loaded.n_features is not None and loaded.n_features != n_card:
            raise ModelError(
                f"{version.onnx_path}: takes {loaded.n_features} features, card lists {n_card}"
            )
        for engine in self._engines():
            try:
                loaded.trees = self._engine(engine, version, loaded)
                loaded.engine = engine
                break
            except EngineUnavailable as exc:
                quiet = self.engine == "auto" and exc.reason in EngineUnavailable.EXPECTED
                log.log(logging.INFO if quiet else logging.WARNING, "%s:%s not scored by the %s engine (%s): %s",
                        version.name, version.version, engine, exc.reason, exc)
                self.metrics.fallbacks.labels(version.name, engine, exc.reason).inc()
        if loaded.trees is None and self.engine != "onnxruntime":
            log.info("%s:%s scored by ONNX Runtime", version.name, version.version)
        self.metrics.loaded(version, loaded.engine)
        return loaded

    def _engines(self) -> tuple[Engine, ...]:
        """The engines to try, in order, before the session."""
        if self.engine == "auto":
            return AUTO
        return () if self.engine == "onnxruntime" else (self.engine,)

    def _engine(self, engine: Engine, version: ModelVersion, loaded: _Loaded) -> CompiledTrees | VectorizedTrees:
        def reference(rows: FloatMatrix) -> FloatVector:
            return self._run(loaded, rows)

        if engine == "vectorized":
            return open_vectorized(version, reference, verify=self._verify)
        return open_compiled(version, reference, cache=self._compiled_cache, verify=self._verify)

    @staticmethod
    def _run(loaded: _Loaded, matrix: FloatMatrix) -> FloatVector:
        if matrix.ndim != 2 or (
            loaded.n_features is not None and matrix.shape[1] != loaded.n_features
        ):
            raise InferenceError(
                f"{loaded.version.name}: expected [batch, {loaded.n_features}] features, "
                f"got {matrix.shape}"
            )
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float32)
        if loaded.trees is not None:
            return loaded.trees.score(matrix)
        try:
            (probabilities,) = loaded.session.run([OUTPUT_NAME], {INPUT_NAME: matrix})
        except Exception as exc:  # onnxruntime's exceptions are untyped
            raise InferenceError(f"{loaded.version.name}: onnxruntime: {exc}") from None
        return np.ascontiguousarray(np.asarray(probabilities)[:, 1], dtype=np.float32)
