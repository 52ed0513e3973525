"""Step 4, inference: each kind's matrix to its model, and to its shadow model if any.

Each kind's call starts as soon as its features are ready (:meth:`Inference.launch`), so
ONNX Runtime (in a thread, without the GIL, for large batches) or Triton works on one kind
while the next kind's features are computed. A production call that fails fails the batch
(the caller may retry it); a shadow call that fails is reported and never fails it.

A backend that scores a call in line (:meth:`InferenceBackend.infer_now`: the in-process
engines below their thread's threshold) is called as a plain function: its scores are kept
as they are, with no coroutine, future or gather per kind. Other calls start eagerly
(:func:`eager`): a call runs at once up to its first suspension, and only one that suspends
(a thread's or Triton's answer to wait for) becomes a task. A task and its gather per kind
cost ~230k instructions a batch (~7% of the loop's at 50 records, benchmarks.md section 35)
for nothing. Python 3.12's eager task factory does the same; 3.11 has none.
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
        # Each kind's production call in launch order: its scores (or its error) when it ran in
        # line, else the future of the call that suspended.
        self.pending: dict[EventKind, Scores | Exception | asyncio.Future[Scores]] = {}
        self.shadow_pending: dict[EventKind, asyncio.Future[F32]] = {}
        self.waiting = False  # some production call suspended: results() gathers

    def launch(self, kind: EventKind, x: F32, runtime: KindRuntime, shadow: KindRuntime | None,
               shadow_x: F32 | None = None) -> None:
        """``shadow_x``: the shadow's own matrix when it runs a candidate rule pack."""
        started = time.perf_counter()
        try:
            now = self.backend.infer_now(runtime.model, x)
        except Exception as exc:  # as a failed call's future holds it: results() raises it
            self.pending[kind] = exc
        else:
            if now is None:
                self.pending[kind] = eager(_timed(self.backend, runtime.model, x))
                self.waiting = True
            else:
                self.pending[kind] = Scores(now[0], now[1], time.perf_counter() - started)
        if shadow is not None:
            self.shadow_pending[kind] = eager(self.backend.infer(shadow.model, x if shadow_x is None else shadow_x))

    async def results(self) -> tuple[dict[EventKind, Scores], dict[EventKind, F32 | BaseException]]:
        """Every kind's scores (in launch order), and each shadow's scores or its error."""
        if not self.waiting and not self.shadow_pending:
            return self._in_line(), {}  # every call ran in line: no future, no gather, no loop turn
        pending = self._futures()
        kinds, shadow_kinds = list(pending), list(self.shadow_pending)
        if all(f.done() for f in pending.values()) and all(f.done() for f in self.shadow_pending.values()):
            return self._done(pending, shadow_kinds)  # every call finished in line: no gather, no loop turn
        try:
            results, shadow_results = await asyncio.gather(
                asyncio.gather(*(pending[k] for k in kinds)),
                asyncio.gather(*(self.shadow_pending[k] for k in shadow_kinds), return_exceptions=True),
            )
        except BaseException:
            await self.cancel()
            raise
        return dict(zip(kinds, results, strict=True)), dict(zip(shadow_kinds, shadow_results, strict=True))

    def _in_line(self) -> dict[EventKind, Scores]:
        """The production calls' scores when all ran in line; the first failed call's error raised."""
        for answer in self.pending.values():
            if isinstance(answer, Exception):
                raise answer
        return self.pending  # type: ignore[return-value]  # every value is Scores: checked above

    def _futures(self) -> dict[EventKind, asyncio.Future[Scores]]:
        """Every production call as a future, those that ran in line as finished ones (what
        :func:`eager` made of them): with a call that suspended, the batch gathers them all."""
        loop = asyncio.get_running_loop()
        futures: dict[EventKind, asyncio.Future[Scores]] = {}
        for kind, answer in self.pending.items():
            if isinstance(answer, asyncio.Future):
                futures[kind] = answer
                continue
            futures[kind] = done = loop.create_future()
            if isinstance(answer, Exception):
                done.set_exception(answer)
            else:
                done.set_result(answer)
        self.pending = dict(futures)
        return futures

    def _done(self, pending: dict[EventKind, asyncio.Future[Scores]], shadow_kinds: list[EventKind],
              ) -> tuple[dict[EventKind, Scores], dict[EventKind, F32 | BaseException]]:
        """:meth:`results` of calls that all finished, as gathering them gives them: a failed
        production call raised, each shadow's error returned."""
        everything: list[asyncio.Future[Any]] = [*pending.values(), *self.shadow_pending.values()]
        for future in everything:
            if not future.cancelled():
                future.exception()  # retrieved (as gather does): no "never retrieved" log
        scores = {kind: future.result() for kind, future in pending.items()}
        return scores, {kind: _outcome(self.shadow_pending[kind]) for kind in shadow_kinds}

    async def cancel(self) -> None:
        tasks: list[asyncio.Future[Any]] = [
            *(f for f in self.pending.values() if isinstance(f, asyncio.Future)), *self.shadow_pending.values()]
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
