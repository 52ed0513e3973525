"""Step 4's calls start eagerly (scorer.pipeline.inference.eager): a call that finishes
without suspending (the in-process engines below ``offload_rows``) makes no task and the
batch gathers nothing; one that suspends (a thread's answer, Triton's) becomes a task that
goes on from where it stopped, with what the loop sends or throws into it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest

from scorer.events.structs import EventKind
from scorer.inference.base import FloatMatrix, FloatVector, ModelRef
from scorer.pipeline.batch import KindRuntime
from scorer.pipeline.inference import Inference, eager
from tests.support.pipeline import FakeBackend


def _tasks() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


async def test_a_call_that_never_suspends_makes_no_task() -> None:
    ran: list[str] = []

    async def now() -> int:
        ran.append("now")
        return 7

    future = eager(now())
    assert ran == ["now"] and future.done() and future.result() == 7 and not _tasks()

    async def fails() -> int:
        raise ValueError("bad batch")

    failed = eager(fails())
    assert failed.done() and isinstance(failed.exception(), ValueError)


async def test_a_call_that_suspends_goes_on_in_a_task_from_where_it_stopped() -> None:
    answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def waits() -> int:
        steps.append("sent")  # runs in line: a request is on its way before launch returns
        got = await answer
        steps.append("answered")
        await asyncio.sleep(0)  # suspends again, on a bare yield this time
        return got + 1

    future = eager(waits())
    assert steps == ["sent"] and not future.done() and isinstance(future, asyncio.Task)
    answer.set_result(41)
    assert await future == 42 and steps == ["sent", "answered"]


async def test_cancelling_a_resumed_call_reaches_the_coroutine() -> None:
    seen: list[str] = []
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def waits() -> None:
        try:
            await never
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            seen.append("cleaned up")

    future = eager(waits())
    await asyncio.sleep(0)
    future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await future
    assert seen == ["cancelled", "cleaned up"] and never.cancelled()


class _Backend(FakeBackend):
    """Scores row sums; ``suspend``: each call waits a loop turn first (as a thread's or
    Triton's answer does); the model named "broken" raises."""

    def __init__(self, suspend: bool) -> None:
        self.suspend = suspend

    async def infer(self, model: ModelRef, features: FloatMatrix) -> FloatVector:
        if self.suspend:
            await asyncio.sleep(0)
        if model.name == "broken":
            raise RuntimeError("shadow down")
        return np.asarray(features.sum(axis=1), np.float32)


def _runtime(name: str) -> KindRuntime:
    """All a launch reads of a kind's runtime: its model."""
    return SimpleNamespace(model=ModelRef(name))  # type: ignore[return-value]


@pytest.mark.parametrize("suspend", [False, True])
async def test_results_are_the_same_in_line_or_gathered(suspend: bool) -> None:
    inference = Inference(_Backend(suspend))
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    inference.launch(EventKind.NETFLOW, x, _runtime("netflow"), _runtime("broken"))
    inference.launch(EventKind.EDR, x * 2, _runtime("edr"), _runtime("edr_shadow"))
    assert bool(_tasks()) is suspend
    scores, shadows = await inference.results()
    assert list(scores) == [EventKind.NETFLOW, EventKind.EDR]
    assert scores[EventKind.NETFLOW].scores.tolist() == [1, 5, 9] and scores[EventKind.EDR].backend == "fake"
    assert isinstance(shadows[EventKind.NETFLOW], RuntimeError)  # a shadow's error is a value
    assert shadows[EventKind.EDR].tolist() == [2, 10, 18]  # type: ignore[union-attr]


@pytest.mark.parametrize("suspend", [False, True])
async def test_a_failed_production_call_fails_the_batch(suspend: bool) -> None:
    inference = Inference(_Backend(suspend))
    x = np.ones((2, 2), np.float32)
    inference.launch(EventKind.NETFLOW, x, _runtime("netflow"), None)
    inference.launch(EventKind.SIEM, x, _runtime("broken"), None)
    with pytest.raises(RuntimeError, match="shadow down"):
        await inference.results()


class _InLine(_Backend):
    """Scores in line (infer_now) but for models named "slow...", which suspend: the
    pipeline's in-process engine beside a call handed to a thread."""

    def __init__(self) -> None:
        super().__init__(suspend=True)

    def infer_now(self, model: ModelRef, features: FloatMatrix) -> tuple[FloatVector, str] | None:
        if model.name.startswith("slow"):
            return None
        if model.name == "broken":
            raise RuntimeError("production down")
        return np.asarray(features.sum(axis=1), np.float32), "inline"


async def test_calls_in_line_make_no_future_and_keep_launch_order() -> None:
    inference = Inference(_InLine())
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    inference.launch(EventKind.NETFLOW, x, _runtime("netflow"), None)
    inference.launch(EventKind.EDR, x * 2, _runtime("edr"), None)
    assert not _tasks() and not any(isinstance(v, asyncio.Future) for v in inference.pending.values())
    scores, shadows = await inference.results()
    assert list(scores) == [EventKind.NETFLOW, EventKind.EDR] and shadows == {}
    assert scores[EventKind.EDR].scores.tolist() == [2, 10, 18] and scores[EventKind.EDR].backend == "inline"
    assert scores[EventKind.NETFLOW].seconds >= 0


@pytest.mark.parametrize("shadow", [False, True])
async def test_calls_in_line_and_suspended_are_gathered_in_launch_order(shadow: bool) -> None:
    inference = Inference(_InLine())
    x = np.ones((2, 2), np.float32)
    inference.launch(EventKind.NETFLOW, x, _runtime("netflow"), None)
    inference.launch(EventKind.EDR, x * 2, _runtime("slow_edr"), _runtime("edr_shadow") if shadow else None)
    inference.launch(EventKind.SIEM, x * 3, _runtime("siem"), None)
    assert _tasks()
    scores, shadows = await inference.results()
    assert list(scores) == [EventKind.NETFLOW, EventKind.EDR, EventKind.SIEM]
    assert [s.backend for s in scores.values()] == ["inline", "fake", "inline"]
    assert [s.scores.tolist() for s in scores.values()] == [[2, 2], [4, 4], [6, 6]]
    assert list(shadows) == ([EventKind.EDR] if shadow else [])


@pytest.mark.parametrize("slow", [False, True])
async def test_a_production_call_failing_in_line_fails_the_batch_at_its_results(slow: bool) -> None:
    inference = Inference(_InLine())
    x = np.ones((2, 2), np.float32)
    inference.launch(EventKind.NETFLOW, x, _runtime("slow" if slow else "netflow"), None)
    inference.launch(EventKind.SIEM, x, _runtime("broken"), None)  # raises nothing here: the features go on
    with pytest.raises(RuntimeError, match="production down"):
        await inference.results()
    assert not _tasks()
