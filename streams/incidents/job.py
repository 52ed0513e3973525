"""The incident job in one process: the router and the correlator side by side, and its
metrics.

Both stages are consumer-group members of their own (``<group>-router``,
``<group>-correlator``): run several processes with distinct ``--instance`` and the same
group to share the partitions of both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .correlate import CorrelatorStage
from .kafka import ensure_incident_topics
from .router import Router
from .stage import JobSettings, Stage

log = logging.getLogger(__name__)


STAGES = ("router", "correlator")


class IncidentJob:
    """``stages``: both (default), or one of them, so that the two can run as processes of
    their own (each its own core and event loop; a batch of one never waits behind the other's)."""

    def __init__(self, settings: JobSettings, registry: CollectorRegistry | None = None,
                 stages: tuple[str, ...] = STAGES) -> None:
        self.settings = settings
        self.counts: dict[str, int] = {}
        self.router = Router(settings, self.counts)
        self.correlator = CorrelatorStage(settings, self.counts)
        if not stages or set(stages) - set(STAGES):
            raise ValueError(f"stages must be among {STAGES}, not {stages}")
        # The correlator first: its restore must not wait behind the router's first batches.
        self.stages: list[Stage] = [s for s in (self.correlator, self.router) if s.name in stages]
        self.started = False
        self.registry = registry or CollectorRegistry()
        self.registry.register(IncidentCollector(self.counts, self.correlator.stats, {
            "open_episodes": self.correlator.open_episodes,
            "partitions": lambda: len(self.correlator.partitions),
            "links": lambda: len(self.router.links),
            "suppression_rules": lambda: len(self.correlator.suppressions.rules),
        }))
        seconds = Histogram("scorer_incidents_batch_duration_seconds",
                            "Wall time of a committed batch: process (read to outputs built), commit (the "
                            "transaction)", ["stage", "step"], registry=self.registry,
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
        size = Histogram("scorer_incidents_batch_records", "Input records of a committed batch", ["stage"],
                         registry=self.registry, buckets=(1, 16, 64, 256, 1024, 2048, 4096, 8192))
        for stage in (self.router, self.correlator):
            stage.observers = {"process": seconds.labels(stage.name, "process"),
                               "commit": seconds.labels(stage.name, "commit"), "records": size.labels(stage.name)}

    async def start(self) -> None:
        await ensure_incident_topics(self.settings.kafka, self.settings.incidents)
        for stage in self.stages:
            await stage.start()
        self.started = True

    async def run(self) -> None:
        """The stages until a stop is requested; one failing stops the other."""
        tasks = [asyncio.create_task(s.run(), name=s.name) for s in self.stages]
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


class IncidentCollector:
    """The job's counters at scrape time, Prometheus-named (``scorer_incidents_...``)."""

    def __init__(self, counts: dict[str, int], stats: dict[str, int], gauges: dict[str, Callable[[], int]]):
        self.counts = counts  # the router's: findings read, dead-lettered, links learned, batches
        self.stats = stats  # the correlators' (shared by every partition's Correlator)
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        findings = CounterMetricFamily("scorer_incidents_findings", "Findings by what became of them",
                                       labels=["outcome"])
        for outcome in ("joined", "suppressed", "duplicates", "implausible_time"):
            findings.add_metric([outcome], self.stats.get(outcome, 0))
        findings.add_metric(["dead_lettered"], self.counts.get("dead_lettered", 0))
        yield findings
        records = CounterMetricFamily("scorer_incidents_records", "Incident Findings published by activity",
                                      labels=["activity"])
        for stat, activity in (("created", "create"), ("updated", "update"), ("closed", "close")):
            records.add_metric([activity], self.stats.get(stat, 0))
        yield records
        yield CounterMetricFamily("scorer_incidents_evicted", "Episodes closed early to bound memory",
                                  value=self.stats.get("evicted", 0))
        yield CounterMetricFamily("scorer_incidents_routed", "Findings re-keyed by correlation entity",
                                  value=self.counts.get("routed", 0))
        yield CounterMetricFamily("scorer_incidents_links_learned", "Address -> host links learned",
                                  value=self.counts.get("links", 0))
        yield CounterMetricFamily("scorer_incidents_suppression_rules_invalid", "Suppression rules refused",
                                  value=self.counts.get("invalid_rules", 0))
        batches = CounterMetricFamily("scorer_incidents_batches", "Batches committed by stage", labels=["stage"])
        for stage in ("router", "correlator"):
            batches.add_metric([stage], self.counts.get(f"{stage}_batches", 0))
        yield batches
        for name, get in self.gauges.items():
            yield GaugeMetricFamily(f"scorer_incidents_{name}", name.replace("_", " "), value=get())
