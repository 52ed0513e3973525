"""The scoring loop's rebalance listener: partitions move to another group member only once
the batches in flight on them are delivered and committed, so no batch is split between two
members and none is scored twice by a rebalance alone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import ConsumerRebalanceListener

from scorer.metrics import ScorerMetrics

log = logging.getLogger(__name__)


class WaitForBatches(ConsumerRebalanceListener):  # type: ignore[misc]
    """``inflight``: held while a batch is scored and handed over; ``drain``: waits until every
    batch handed over is acknowledged and committed; ``listeners`` (the loop's observers, e.g.
    the profile view) hear each rebalance after that, in order."""

    def __init__(self, inflight: asyncio.Lock, drain: Callable[[], Awaitable[None]],
                 listeners: Sequence[ConsumerRebalanceListener]) -> None:
        self.inflight, self.drain, self.listeners = inflight, drain, listeners

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # Let the batches in flight finish and commit while we still own their partitions.
        async with self.inflight:
            await self.drain()
        for listener in self.listeners:  # e.g. the profile view drops theirs
            await listener.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("assigned %s", sorted(f"{tp.topic}/{tp.partition}" for tp in assigned))
        for listener in self.listeners:  # awaited: e.g. profiles load before scoring
            await listener.on_partitions_assigned(assigned)


class AssignmentMetrics(ConsumerRebalanceListener):  # type: ignore[misc]
    """How many input partitions the process owns, and how often the group assigned it a set:
    an uneven split or a group that keeps rebalancing shows on /metrics."""

    def __init__(self, metrics: ScorerMetrics) -> None:
        self.metrics = metrics

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.metrics.assigned_partitions.set(0)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.metrics.assignments.inc()
        self.metrics.assigned_partitions.set(len(assigned))
