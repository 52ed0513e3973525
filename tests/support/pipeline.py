"""Helpers for integration tests: settings per test, a scorer running in-process, real
producers/consumers (aiokafka) and kcat as an independent client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from scorer.config import BatchSettings, InferenceSettings, KafkaSettings, RuleSettings, Settings, TopicSettings
from scorer.inference.base import InferenceBackend, ModelRef
from scorer.metrics import ScorerMetrics
from scorer.pipeline.loop import ScoringLoop
from scorer.profiles.view import TopicProfileView
from scorer.service.build import build_scorer, register_engine_metrics
from tests.support.paths import MODEL_REPOSITORY, RULE_REPOSITORY


class FakeBackend(InferenceBackend):
    """An inference backend that is always up and ready; subclasses say how it scores (infer)."""

    name = "fake"

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def ready(self, model: ModelRef) -> bool:
        return True


def scorer_settings(
    bootstrap: str,
    *,
    backend: str = "onnxruntime",
    triton_url: str = "127.0.0.1:8001",
    prefix: str | None = None,
    group: str | None = None,
    scores: bool = True,
    repository: Path = MODEL_REPOSITORY,
    **inference: Any,
) -> Settings:
    p = prefix or f"t{uuid.uuid4().hex[:8]}"
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap, group_id=group or f"{p}-scorer", client_id=f"{p}-c"),
        topics=TopicSettings(
            netflow=f"{p}.events.netflow", edr=f"{p}.events.edr", siem=f"{p}.events.siem",
            alerts_prefix=f"{p}.alerts.", dead_letter=f"{p}.dlq", scores=f"{p}.scores" if scores else None,
        ),
        batch=BatchSettings(max_records=512, max_wait_ms=20),
        inference=InferenceSettings(backend=backend, triton_url=triton_url, model_repository=repository, **inference),  # type: ignore[arg-type]
        rules=RuleSettings(repository=RULE_REPOSITORY),
    )


class Job(Protocol):
    """A service loop: the scoring loop, a streams worker or job."""

    async def start(self) -> None: ...
    async def run(self) -> None: ...
    def request_stop(self) -> None: ...
    async def stop(self) -> None: ...


J = TypeVar("J", bound=Job)


@contextlib.asynccontextmanager
async def running_job(job: J, stop_timeout_s: float = 30.0) -> AsyncIterator[J]:
    """``job`` started and running in a task; on leaving, asked to stop, its run finished
    (within ``stop_timeout_s``), then stopped: as the service's signal handling does."""
    await job.start()
    task = asyncio.create_task(job.run())
    try:
        yield job
    finally:
        job.request_stop()
        await asyncio.wait_for(task, stop_timeout_s)
        await job.stop()


@contextlib.asynccontextmanager
async def running_scorer(
    settings: Settings, profiles: TopicProfileView | None = None
) -> AsyncIterator[tuple[ScoringLoop, ScorerMetrics]]:
    """``scorer run`` in process (as scorer.service.run wires it), optionally over a started
    profile view that then follows the service's partition assignment."""
    metrics = ScorerMetrics()
    scorer = build_scorer(settings, profiles)
    await scorer.backend.start()
    register_engine_metrics(scorer.backend, metrics.registry)
    service = ScoringLoop(settings, scorer, metrics)
    if profiles is not None:
        service.partition_listeners.append(profiles)
    try:
        async with running_job(service):
            yield service, metrics
    finally:
        await scorer.backend.close()


async def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    n = 0
    try:
        futures = []
        for key, value in records:
            futures.append(await producer.send(topic, value, key=key))
            n += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return n


async def consume(
    bootstrap: str, topic: str, expected: int, timeout: float = 60.0, done: Any = None
) -> list[Any]:
    """Read ``topic`` from the beginning until ``expected`` records arrived (or ``done(records)``
    holds) or the timeout passes."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
        group_id=None, isolation_level="read_committed",
    )
    await consumer.start()
    out: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        finished = done or (lambda got: len(got) >= expected)
        while not finished(out) and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                out.extend(msgs)
    finally:
        await consumer.stop()
    return out


async def wait_for(predicate: Any, timeout: float = 60.0, interval: float = 0.1) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return bool(predicate())


def kcat_consume(bootstrap: str, topic: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """All records of ``topic`` read by kcat (an independent librdkafka client), as dicts."""
    proc = subprocess.run(
        ["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q"],
        capture_output=True, timeout=timeout, check=True,
    )
    # kcat copies payload bytes into its JSON as they are: invalid UTF-8 (a dead-lettered
    # record) must survive the decode, as surrogates, rather than fail the whole read.
    text = proc.stdout.decode("utf-8", "surrogateescape")
    return [json.loads(line) for line in text.splitlines() if line.strip()]
