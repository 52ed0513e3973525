"""Step 4, inference: each kind's matrix to its model, and to its shadow model if any.

Each kind's call starts as soon as its features are ready (:meth:`Inference.launch`), so
ONNX Runtime (in a thread, without the GIL, for large batches) or Triton works on one kind
while the next kind's features are computed. A production call that fails fails the batch
(the caller may retry it); a shadow call that fails is reported and never fails it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, NamedTuple

from scorer.events.structs import EventKind
from scorer.features.base import F32
from scorer.inference.base import InferenceBackend, ModelRef
from scorer.pipeline.batch import KindRuntime


class Scores(NamedTuple):
    """One kind's production scores, the backend that computed them, the call's wall time."""

    scores: F32
    backend: str
    seconds: float


class Inference:
    """The inference calls of one attempt at a batch, one task per kind and shadow."""

    def __init__(self, backend: InferenceBackend) -> None:
        self.backend = backend
        self.pending: dict[EventKind, asyncio.Task[Scores]] = {}
        self.shadow_pending: dict[EventKind, asyncio.Task[F32]] = {}

    def launch(self, kind: EventKind, x: F32, runtime: KindRuntime, shadow: KindRuntime | None,
               shadow_x: F32 | None = None) -> None:
        """``shadow_x``: the shadow's own matrix when it runs a candidate rule pack."""
        self.pending[kind] = asyncio.create_task(_timed(self.backend, runtime.model, x))
        if shadow is not None:
            self.shadow_pending[kind] = asyncio.create_task(
                self.backend.infer(shadow.model, x if shadow_x is None else shadow_x))

    async def results(self) -> tuple[dict[EventKind, Scores], dict[EventKind, F32 | BaseException]]:
        """Every kind's scores (in launch order), and each shadow's scores or its error."""
        kinds, shadow_kinds = list(self.pending), list(self.shadow_pending)
        try:
            results, shadow_results = await asyncio.gather(
                asyncio.gather(*(self.pending[k] for k in kinds)),
                asyncio.gather(*(self.shadow_pending[k] for k in shadow_kinds), return_exceptions=True),
            )
        except BaseException:
            await self.cancel()
            raise
        return dict(zip(kinds, results, strict=True)), dict(zip(shadow_kinds, shadow_results, strict=True))

    async def cancel(self) -> None:
        tasks: list[asyncio.Task[Any]] = [*self.pending.values(), *self.shadow_pending.values()]
        for task in tasks:
            task.cancel()
        # Retrieve what already finished, so no "exception was never retrieved" is logged.
        await asyncio.gather(*tasks, return_exceptions=True)


async def _timed(backend: InferenceBackend, model: ModelRef, x: F32) -> Scores:
    started = time.perf_counter()
    scores, name = await backend.infer_with_source(model, x)
    return Scores(scores, name, time.perf_counter() - started)
