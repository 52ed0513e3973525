"""Triton first, in-process ONNX Runtime when Triton is down (and, when asked, for small calls).

Alerts name the backend that actually scored them (``unmapped.scorer.backend``), so a SOC
can tell fallback periods apart. Once Triton fails, the primary is only retried after
``retry_after_s`` so each batch during an outage does not pay a connection timeout.

``local_below_rows``: a call of fewer rows goes to the in-process copy of the same version
even while Triton is up. A light stream's micro-batches hold a few rows per kind, and a
Triton call costs a gRPC round trip (~0.1-0.3 ms on one host) against ~1 µs a row for the
compiled trees in process (``inference.in_process_engine``); large calls still go to Triton.
"""

from __future__ import annotations

import logging
import time

from scorer.errors import BackendUnavailable, InferenceError, ModelError
from scorer.inference.base import FloatMatrix, FloatVector, InferenceBackend, ModelRef

log = logging.getLogger(__name__)


class FailoverBackend(InferenceBackend):
    name = "failover"

    def __init__(
        self, primary: InferenceBackend, fallback: InferenceBackend, *, retry_after_s: float = 2.0,
        local_below_rows: int = 0,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.retry_after_s = retry_after_s
        self.local_below_rows = local_below_rows
        self._primary_down_since: float | None = None
        # A subclass that routes otherwise (its own infer_with_source) is awaited, never run in line.
        self._inline = type(self).infer_with_source is FailoverBackend.infer_with_source

    @property
    def primary_up(self) -> bool:
        return self._primary_down_since is None

    async def start(self) -> None:
        await self.fallback.start()
        try:
            await self.primary.start()
        except BackendUnavailable as exc:
            log.warning("primary backend %s unavailable at start: %s", self.primary.name, exc)
            self._primary_down_since = time.monotonic()

    async def close(self) -> None:
        await self.primary.close()
        await self.fallback.close()

    async def ready(self, model: ModelRef) -> bool:
        return await self.fallback.ready(model) or await self.primary.ready(model)

    async def infer(self, model: ModelRef, features: FloatMatrix) -> FloatVector:
        scores, _ = await self.infer_with_source(model, features)
        return scores

    def infer_now(self, model: ModelRef, features: FloatMatrix) -> tuple[FloatVector, str] | None:
        """A call below ``local_below_rows`` in line, when the in-process copy scores it so."""
        if not self._inline or features.shape[0] >= self.local_below_rows:
            return None
        found = self.fallback.infer_now(model, features)
        return None if found is None else (found[0], self.fallback.name)

    async def infer_with_source(self, model: ModelRef, features: FloatMatrix) -> tuple[FloatVector, str]:
        down = self._primary_down_since
        if features.shape[0] < self.local_below_rows:
            return await self.fallback.infer(model, features), self.fallback.name
        if down is None or time.monotonic() - down >= self.retry_after_s:
            try:
                scores = await self.primary.infer(model, features)
            except (InferenceError, ModelError) as exc:
                # Unreachable, or reachable but unable to serve this version (e.g. Triton
                # restarted without it): the in-process copy of the same version scores.
                if down is None:
                    log.warning("%s unavailable, scoring with %s: %s", self.primary.name, self.fallback.name, exc)
                self._primary_down_since = time.monotonic()
            else:
                if down is not None:
                    log.info("%s is back; scoring with it again", self.primary.name)
                self._primary_down_since = None
                return scores, self.primary.name
        return await self.fallback.infer(model, features), self.fallback.name
