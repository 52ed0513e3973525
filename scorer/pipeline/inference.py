"""Step 4, inference: each kind's matrix to its model, and to its shadow model if any.

Each kind's call starts as soon as its features are ready (:meth:`Inference.launch`), so
ONNX Runtime (in a thread, without the GIL, for large batches) or Triton works on one kind
while the next kind's features are computed. A production call that fails fails the batch
(the caller may retry it); a shadow call that fails is reported and never fails it.

Calls start eagerly (:func:`eager`): a call runs at once up to its first suspension, and
only one that suspends (a thread's or Triton's answer to wait for) becomes a task. The
in-process engines score a micro-batch without ever suspending, and a task and its gather
per kind cost ~230k instructions a batch (~7% of the loop's at 50 records, benchmarks.md
section 35) for nothing. Python 3.12's eager task factory does the same; 3.11 has none.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Generator
from typing import Any, NamedTuple, TypeVar

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
    """The inference calls of one attempt at a batch, one per kind and shadow."""

    def __init__(self, backend: InferenceBackend) -> None:
        self.backend = backend
        self.pending: dict[EventKind, asyncio.Future[Scores]] = {}
        self.shadow_pending: dict[EventKind, asyncio.Future[F32]] = {}

    def launch(self, kind: EventKind, x: F32, runtime: KindRuntime, shadow: KindRuntime | None,
               shadow_x: F32 | None = None) -> None:
        """``shadow_x``: the shadow's own matrix when it runs a candidate rule pack."""
        self.pending[kind] = eager(_timed(self.backend, runtime.model, x))
        if shadow is not None:
            self.shadow_pending[kind] = eager(self.backend.infer(shadow.model, x if shadow_x is None else shadow_x))

    async def results(self) -> tuple[dict[EventKind, Scores], dict[EventKind, F32 | BaseException]]:
        """Every kind's scores (in launch order), and each shadow's scores or its error."""
        kinds, shadow_kinds = list(self.pending), list(self.shadow_pending)
        if all(f.done() for f in self.pending.values()) and all(f.done() for f in self.shadow_pending.values()):
            return self._done(kinds, shadow_kinds)  # every call finished in line: no gather, no loop turn
        try:
            results, shadow_results = await asyncio.gather(
                asyncio.gather(*(self.pending[k] for k in kinds)),
                asyncio.gather(*(self.shadow_pending[k] for k in shadow_kinds), return_exceptions=True),
            )
        except BaseException:
            await self.cancel()
            raise
        return dict(zip(kinds, results, strict=True)), dict(zip(shadow_kinds, shadow_results, strict=True))

    def _done(self, kinds: list[EventKind], shadow_kinds: list[EventKind],
              ) -> tuple[dict[EventKind, Scores], dict[EventKind, F32 | BaseException]]:
        """:meth:`results` of calls that all finished, as gathering them gives them: a failed
        production call raised, each shadow's error returned."""
        everything: list[asyncio.Future[Any]] = [*self.pending.values(), *self.shadow_pending.values()]
        for future in everything:
            if not future.cancelled():
                future.exception()  # retrieved (as gather does): no "never retrieved" log
        scores = {kind: self.pending[kind].result() for kind in kinds}
        return scores, {kind: _outcome(self.shadow_pending[kind]) for kind in shadow_kinds}

    async def cancel(self) -> None:
        tasks: list[asyncio.Future[Any]] = [*self.pending.values(), *self.shadow_pending.values()]
        for task in tasks:
            task.cancel()
        # Retrieve what already finished, so no "exception was never retrieved" is logged.
        await asyncio.gather(*tasks, return_exceptions=True)


async def _timed(backend: InferenceBackend, model: ModelRef, x: F32) -> Scores:
    started = time.perf_counter()
    scores, name = await backend.infer_with_source(model, x)
    return Scores(scores, name, time.perf_counter() - started)


def _outcome(future: asyncio.Future[F32]) -> F32 | BaseException:
    if future.cancelled():
        return asyncio.CancelledError()
    return future.exception() or future.result()


T = TypeVar("T")


def eager(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """``coro`` run now up to its first suspension: a finished future when it completes (or
    raises) without suspending, else a task that goes on from where it stopped."""
    loop = asyncio.get_running_loop()
    try:
        first = coro.send(None)
    except StopIteration as stop:
        done: asyncio.Future[T] = loop.create_future()
        done.set_result(stop.value)
        return done
    except Exception as exc:  # a task would hold it: so does the future, for results() to raise
        failed: asyncio.Future[T] = loop.create_future()
        failed.set_exception(exc)
        return failed
    return asyncio.ensure_future(_Resumed(coro, first))


class _Resumed:
    """An awaitable that drives a started coroutine from the value it last yielded (what a
    task's step does): what the task sends or throws goes to the coroutine, and its first
    yield (the future it waits on, marked blocking) reaches the task as if it yielded it."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self.coro, self.first = coro, first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self.coro, self.first
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # CancelledError included: the coroutine decides
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value
