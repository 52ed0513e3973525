"""``retriable`` decides: the scoring loop holds a batch and retries only what may pass (an
outage), and stops on the rest; Triton's "not loaded (yet)" is one that may pass while
scoring, and stays a refusal in model control."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest
from tritonclient.utils import InferenceServerException

from scorer.config import Settings
from scorer.errors import (
    BackendUnavailable,
    ConfigError,
    InferenceError,
    IntegrityError,
    KafkaUnavailable,
    ModelError,
    RecordError,
    ScorerError,
)
from scorer.inference.base import ModelRef
from scorer.inference.triton import TritonBackend
from scorer.metrics import ScorerMetrics
from scorer.pipeline.loop import ScoringLoop


def test_only_what_may_pass_is_retriable() -> None:
    assert BackendUnavailable("down").retriable and KafkaUnavailable("down").retriable
    for error in (ConfigError("x"), InferenceError("x"), ModelError("x"), IntegrityError("x"), RecordError("r", "x")):
        assert not error.retriable, type(error).__name__


class FakeConsumer:
    def __init__(self) -> None:
        self.held: set[str] = set()
        self.calls: list[str] = []

    def assignment(self) -> set[str]:
        return {"events.netflow/0"}

    def pause(self, *tps: str) -> None:
        self.calls.append("pause")
        self.held |= set(tps)

    def paused(self) -> set[str]:
        return set(self.held)

    def resume(self, *tps: str) -> None:
        self.calls.append("resume")
        self.held -= set(tps)


class ScriptedScorer:
    """Raises the scripted errors in turn, then scores."""

    collect_scores = False

    def __init__(self, *errors: ScorerError) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def score(self, records: Any) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "outcome"


def _service(scorer: ScriptedScorer) -> tuple[ScoringLoop, FakeConsumer]:
    service = ScoringLoop(Settings(), scorer, ScorerMetrics())  # type: ignore[arg-type]
    service._consumer = consumer = FakeConsumer()
    return service, consumer


def _resumed(service: ScoringLoop, consumer: FakeConsumer) -> bool:
    gauge = service.metrics.registry.get_sample_value("scorer_consumption_paused")
    return consumer.calls == ["pause", "resume"] and not consumer.held and not service.paused and gauge == 0


async def test_an_outage_holds_the_batch_and_retries_until_it_scores() -> None:
    scorer = ScriptedScorer(BackendUnavailable("triton down"), BackendUnavailable("still down"))
    service, consumer = _service(scorer)
    assert await service._score([]) == "outcome"  # type: ignore[comparison-overlap]
    assert scorer.calls == 3 and _resumed(service, consumer)


@pytest.mark.parametrize("error", [InferenceError("bad shape"), ModelError("no such version")])
async def test_a_failure_no_retry_can_fix_stops_at_once(error: ScorerError) -> None:
    scorer = ScriptedScorer(BackendUnavailable("triton down"), error)
    service, consumer = _service(scorer)
    with pytest.raises(type(error)):
        await asyncio.wait_for(service._score([]), 5)  # not held and retried for ever
    assert scorer.calls == 2, "held through the outage, not past the refusal"
    assert _resumed(service, consumer), "not left paused"


class FakeRpc:
    def __init__(self, status: str) -> None:
        self.status = status

    def _fail(self) -> Awaitable[Any]:
        async def fail() -> Any:
            raise InferenceServerException("Request for unknown model: 'm' version 7 is not found", status=self.status)
        return fail()

    def get_model_config(self, name: str, **_: Any) -> Awaitable[Any]:
        return self._fail()

    def infer(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return self._fail()

    def get_model_repository_index(self, **_: Any) -> Awaitable[Any]:
        async def index() -> dict[str, Any]:
            return {"models": []}
        return index()

    def unload_model(self, name: str, **_: Any) -> Awaitable[Any]:
        return self._fail()


async def test_triton_not_serving_a_version_may_pass_while_scoring_but_is_refused_in_model_control() -> None:
    backend = TritonBackend()
    backend._client = FakeRpc("StatusCode.NOT_FOUND")
    with pytest.raises(BackendUnavailable) as caught:
        await backend.infer(ModelRef("m", "7"), [[1.0, 2.0]])  # type: ignore[arg-type]
    assert caught.value.retriable
    with pytest.raises(ModelError) as refused:
        await backend.unload_model("m")
    assert not refused.value.retriable
    backend._client = FakeRpc("StatusCode.INVALID_ARGUMENT")
    with pytest.raises(InferenceError) as bad:
        await backend.infer(ModelRef("m", "7"), [[1.0, 2.0]])  # type: ignore[arg-type]
    assert not bad.value.retriable

