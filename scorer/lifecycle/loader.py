"""Making a model version servable before any batch depends on it.

Order matters, and every step can refuse (ModelError / IntegrityError) with production
untouched, because nothing is installed until all of them passed:

1. verify SHA256SUMS (``load_version``): a tampered file never reaches a backend;
2. the kind's contract in the card's feature set (card, ONNX tensors, trial run) - the
   checks ``validate`` runs - and that feature set is the one the scorer computes: a switch
   keeps the live feature set (``feature_set`` refusal otherwise);
3. Triton, when it is a backend: run the sync command (if Triton does not read the model
   repository itself), load the version with explicit model control - the versions
   already served stay served - and score a trial batch through gRPC;
4. the in-process ONNX Runtime backend (embedded, or Triton's fallback) opens the session;
5. build the KindRuntime on the live feature set: per-entity state carries over, so the
   new model sees the same features the old one would have.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scorer.errors import BackendUnavailable, InferenceError, IntegrityError, ModelError
from scorer.events.structs import EventKind
from scorer.features.base import FeatureSet
from scorer.inference.base import InferenceBackend, ModelRef
from scorer.inference.failover import FailoverBackend
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.inference.repository import ModelVersion, load_version
from scorer.lifecycle.contract import feature_set_mismatch, version_problems
from scorer.pipeline.batch import KindRuntime
from scorer.rules.annotate import RuleStage

if TYPE_CHECKING:
    from scorer.inference.triton import TritonBackend

log = logging.getLogger(__name__)


class Refused(ModelError):
    """A version the scorer will not serve: ``reason`` is the step that refused it
    (integrity, missing, contract, sync, triton, onnxruntime), a metric label."""

    def __init__(self, reason: str, version: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.version = version


@contextlib.contextmanager
def step(reason: str, version: str) -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        raise Refused("integrity", version, str(exc)) from None
    except Refused:
        raise
    except ModelError as exc:
        raise Refused(reason, version, str(exc)) from None


def split_backend(backend: InferenceBackend) -> tuple[TritonBackend | None, OnnxRuntimeBackend | None]:
    parts = [backend.primary, backend.fallback] if isinstance(backend, FailoverBackend) else [backend]
    # Not imported (tritonclient's gRPC stack, ~80 ms of a start) unless a Triton backend was
    # made: where the module is not loaded, no backend is one.
    triton_module = sys.modules.get("scorer.inference.triton")
    triton = None if triton_module is None else next(
        (b for b in parts if isinstance(b, triton_module.TritonBackend)), None)
    local = next((b for b in parts if isinstance(b, OnnxRuntimeBackend)), None)
    return triton, local


class RuntimeLoader:
    def __init__(self, repository: Path, backend: InferenceBackend, *, sync_command: list[str],
                 sync_timeout_s: float = 60.0) -> None:
        self.repository = repository
        self.triton, self.local = split_backend(backend)
        self.failover = isinstance(backend, FailoverBackend)
        self.sync_command = list(sync_command)
        self.sync_timeout_s = sync_timeout_s

    async def runtime(
        self, kind: EventKind, name: str, version: str, features: FeatureSet, rules: RuleStage | None = None,
    ) -> KindRuntime:
        """A KindRuntime for ``name:version`` that the backends can score right now; it keeps
        the live feature set and rule pack (``rules``), so a model switch is only a model switch."""
        # Hashing and onnxruntime session creation are blocking file work: off the loop,
        # so the batch in flight is not held up by a deploy.
        with step("missing", version):
            mv = await asyncio.to_thread(load_version, self.repository, name, version)
        problems = await asyncio.to_thread(version_problems, mv, kind.value)
        if problems:
            raise Refused("contract", version,
                          f"{name}:{version} does not fit the {kind.value} contract: " + "; ".join(problems))
        mismatch = feature_set_mismatch(kind.value, mv.card, features.names)
        if mismatch:
            raise Refused("feature_set", version, mismatch)
        ref = ModelRef(name, version)
        if self.triton is not None:
            with step("sync", version):
                await self._sync()
            with step("triton", version):
                await self._triton(mv, ref)
        if self.local is not None:
            with step("onnxruntime", version):
                await asyncio.to_thread(self.local.load, ref)
        with step("contract", version):
            return KindRuntime.build(kind, features, mv.card, rules)

    async def ensure_served(self, refs: list[ModelRef]) -> list[ModelRef]:
        """Load into Triton what it should serve but does not (after a Triton restart it
        loads its config's version policy, not what the control topic names). Returns
        what was reloaded; failures are logged and retried on the next call."""
        if self.triton is None:
            return []
        reloaded = []
        for ref in refs:
            if await self.triton.ready(ref):
                continue
            try:
                # Checked again: the files may have changed since this version was installed,
                # and Triton would load whatever is on disk now.
                await asyncio.to_thread(load_version, self.repository, ref.name, ref.version)
                await self._sync()
                await self.triton.load_model(ref.name, ref.version)
            except (ModelError, BackendUnavailable) as exc:  # IntegrityError included
                log.warning("triton does not serve %s:%s and could not load it (yet): %s", ref.name, ref.version, exc)
                continue
            log.info("triton was not serving %s:%s (restarted?); loaded it again", ref.name, ref.version)
            reloaded.append(ref)
        return reloaded

    def unload_local(self, ref: ModelRef) -> None:
        """Close the in-process session: it is this process's own, so it goes at once."""
        if self.local is not None:
            self.local.unload(ref)

    @property
    def shared(self) -> bool:
        """Whether versions live in a server other scorer processes use too (Triton)."""
        return self.triton is not None

    async def unload_shared(self, ref: ModelRef) -> None:
        """Stop Triton serving ``ref``, keeping its other versions (BackendUnavailable and
        ModelError propagate: the caller decides whether to retry)."""
        if self.triton is not None:
            await self.triton.unload_model(ref.name, ref.version)

    async def _triton(self, mv: ModelVersion, ref: ModelRef) -> None:
        assert self.triton is not None
        try:
            await self.triton.load_model(ref.name, ref.version)
            trial = await self.triton.infer(ref, np.zeros((2, len(mv.card.feature_names)), np.float32))
        except BackendUnavailable as exc:
            if not self.failover:
                raise ModelError(f"triton unavailable, cannot load {ref.name}:{ref.version}: {exc}") from None
            # With a fallback the switch must still work during an outage (a rollback is
            # exactly when you need it): score in process now, Triton loads it when back.
            log.warning("triton unavailable; %s:%s will be served in process until it returns: %s",
                        ref.name, ref.version, exc)
            return
        except InferenceError as exc:
            raise ModelError(f"triton cannot serve {ref.name}:{ref.version}: {exc}") from None
        if trial.shape != (2,) or not np.isfinite(trial).all():
            raise ModelError(f"triton trial inference of {ref.name}:{ref.version} returned {trial!r}")

    async def _sync(self) -> None:
        if not self.sync_command:
            return
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *self.sync_command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.sync_timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise ModelError(f"sync command timed out after {self.sync_timeout_s:.0f}s: {self.sync_command}") from None
        if proc.returncode != 0:
            tail = out.decode(errors="replace")[-500:]
            raise ModelError(f"sync command failed ({proc.returncode}): {self.sync_command}: {tail}")
        log.info("model repository synced for triton in %.2fs", time.perf_counter() - started)
