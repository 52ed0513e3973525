"""How far a drain has got, polled without reading a record: the output topic's end offsets
(:class:`OutputCount`, for runners that write a record per event), or the input offsets the
runner's consumer group has committed (:class:`CommittedCount`, for runners that write alerts
only: the service's default). Both answer with the time of each poll (scorer.bench.harness).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Self

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
