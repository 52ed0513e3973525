"""The incident job in one process: the router and the correlator side by side, metrics.

Both stages are consumer-group members of their own (``<group>-router``,
``<group>-correlator``): run several processes with distinct ``--instance`` and the same
group to share the partitions of both.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry

from .correlate import CorrelatorStage
from .kafka import IncidentCollector, ensure_incident_topics
from .router import Router
from .stage import JobSettings

log = logging.getLogger(__name__)


class IncidentJob:
    def __init__(self, settings: JobSettings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.counts: dict[str, int] = {}
        self.router = Router(settings, self.counts)
        self.correlator = CorrelatorStage(settings, self.counts)
        self.started = False
        self.registry = registry or CollectorRegistry()
        self.registry.register(IncidentCollector(self.counts, self.correlator.stats, {
            "open_episodes": self.correlator.open_episodes,
            "partitions": lambda: len(self.correlator.partitions),
            "links": lambda: len(self.router.links),
            "suppression_rules": lambda: len(self.correlator.suppressions.rules),
        }))

    async def start(self) -> None:
        await ensure_incident_topics(self.settings.kafka, self.settings.incidents)
        # The correlator first: its restore must not wait behind the router's first batches.
        await self.correlator.start()
        await self.router.start()
        self.started = True

    async def run(self) -> None:
        """Both stages until a stop is requested; one failing stops the other."""
        tasks = [asyncio.create_task(s.run(), name=s.name) for s in (self.router, self.correlator)]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            self.request_stop()
            await asyncio.gather(*tasks, return_exceptions=True)

    def request_stop(self) -> None:
        self.router.request_stop()
        self.correlator.request_stop()

    async def stop(self) -> None:
        self.request_stop()
        for stage in (self.router, self.correlator):
            await stage.stop()
