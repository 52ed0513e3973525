"""How far a drain has got, polled without reading a record: the output topic's end offsets
(:class:`OutputCount`, for runners that write a record per event), or the input offsets the
runner's consumer group has committed (:class:`CommittedCount`, for runners that write alerts
only: the service's default). Both answer with the time of each poll; :func:`watch_drain`
polls one until a drain is done (scorer.bench.harness).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol, Self

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError


class Count(ABC):
    """A drain's progress, polled every ``POLL_S``: an async context (its client's life)."""

    POLL_S = 0.01

    @abstractmethod
    async def __aenter__(self) -> Self: ...

    @abstractmethod
    async def __aexit__(self, *exc: object) -> None: ...

    @abstractmethod
    async def count(self) -> tuple[int, float]:
        """(records done, ``time.perf_counter()`` when the broker answered)."""


class OutputCount(Count):
    """The output topic's record count, from its partitions' end offsets (one ListOffsets
    request a poll), with the time of each poll: what a drain needs, without reading a record.
    A runner that produces in transactions would be counted a commit marker per transaction
    high (the drain would end that many records early); the bench's runners do not."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
        self._tps = [TopicPartition(topic, p) for p in range(partitions)]

    async def __aenter__(self) -> Self:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def count(self) -> tuple[int, float]:
        ends = await self._consumer.end_offsets(self._tps)
        return sum(ends.values()), time.perf_counter()


class CommittedCount(Count):
    """The records of ``topics`` the consumer group ``group`` has committed (one OffsetFetch
    request a poll). The scoring loop commits a batch's offsets once its outputs are acked,
    at once under load; an idle loop holds them up to ``scorer.pipeline.sink.COMMIT_WITHIN_S``
    (0.1 s), so the last batch of a drain may be counted up to that late (a drain's rate a
    little low, never high)."""

    POLL_S = 0.02  # two requests a poll (the coordinator, then the offsets)

    def __init__(self, bootstrap: str, group: str, topics: list[str], partitions: int) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._group = group
        self._tps = {TopicPartition(t, p) for t in topics for p in range(partitions)}
        self._done = 0

    async def __aenter__(self) -> Self:
        await self._admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._admin.close()

    async def count(self) -> tuple[int, float]:
        try:
            committed = await self._admin.list_consumer_group_offsets(self._group)
        except KafkaError as exc:
            if not exc.retriable:
                raise
            # No coordinator yet: a fresh broker makes its offsets topic with the group's first
            # commit. Nothing new is committed meanwhile.
            return self._done, time.perf_counter()
        self._done = sum(max(0, meta.offset) for tp, meta in committed.items() if tp in self._tps)
        return self._done, time.perf_counter()


class Runner(Protocol):
    """What a drain watches of the runner's process (scorer.bench.harness.RunnerProcess)."""

    proc: subprocess.Popen[bytes]

    def cpu(self) -> float: ...

    def sample(self) -> None: ...


class Window(msgspec.Struct):
    """A drain's measured window: records counted, perf_counter() and the runner's CPU
    seconds, at the first poll that saw records done and at the last."""

    count0: int = 0
    t0: float = 0.0
    cpu0: float = 0.0
    count1: int = 0
    t1: float = 0.0
    cpu1: float = 0.0


async def watch_drain(outputs: Count, runner: Runner, events: int, what: str,
                      on_poll: Callable[[int, float], None] | None = None) -> Window:
    """Polls until all ``events`` are done (a poll's error, <= POLL_S, at each end).
    ``on_poll(done, perf_counter)`` sees every poll's answer (progress over time, read from
    the broker: nothing asked of the runner)."""
    w = Window()
    deadline = time.perf_counter() + 600
    while w.count1 < events and time.perf_counter() < deadline:
        if runner.proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {runner.proc.returncode}")
        await asyncio.sleep(outputs.POLL_S)
        w.count1, w.t1 = await outputs.count()
        if on_poll is not None:
            on_poll(w.count1, w.t1)
        w.cpu1 = runner.cpu()
        runner.sample()
        if not w.t0 and w.count1:
            w.count0, w.t0, w.cpu0 = w.count1, w.t1, w.cpu1
    return w
