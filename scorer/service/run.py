"""Running the service (``scorer run``): the profile view, the scorer, the Kafka loop, the
model lifecycle and the HTTP endpoints started in order, and stopped in reverse."""

from __future__ import annotations

import logging

from scorer.config import Settings
from scorer.lifecycle.controller import start_lifecycle
from scorer.metrics import ScorerMetrics
from scorer.pipeline.loop import ScoringLoop
from scorer.profiles.view import TopicProfileView
from scorer.service.build import build_scorer, register_engine_metrics
from scorer.service.gctune import start_up
from scorer.service.http import HealthServer
from scorer.service.signals import stop_on_signals

log = logging.getLogger(__name__)


async def run_service(settings: Settings) -> None:
    """``scorer run``: consume until SIGTERM/SIGINT, then finish the batch in flight."""
    with start_up() as started:  # the collector off until the loop is started
        metrics = ScorerMetrics()
        profiles = TopicProfileView(settings, metrics.registry) if settings.profiles.source == "topic" else None
        if profiles is not None:
            # Read to the end before a batch of their partitions is scored: no burst of "never seen".
            await profiles.start()
        scorer = build_scorer(settings, profiles)
        for kind, rt in scorer.runtimes.items():
            metrics.model_info.labels(kind.value, rt.model.name, rt.model.version).set(1)
            if rt.rules is not None:
                metrics.rule_pack_info.labels(rt.rules.name, rt.rules.version, str(len(rt.rules.by_id))).set(1)
        await scorer.backend.start()
        register_engine_metrics(scorer.backend, metrics.registry)  # which engine scores each version
        loop = ScoringLoop(settings, scorer, metrics)
        if profiles is not None:
            loop.partition_listeners.append(profiles)  # follows the assignment (profiles.partitions)
        http = HealthServer(metrics.registry, lambda: loop.ready, host=settings.http.host, port=settings.http.port,
                            fd=settings.http.fd)
        await http.start()
        log.info("metrics and health on http://%s:%d", http.host, http.port)
        stop_on_signals(loop.request_stop)
        # Model lifecycle (control topic): versions asked for there are installed before the first batch.
        lifecycle = await start_lifecycle(loop)
        try:
            # Inside the try: a start that fails (wrong password, unknown CA) still closes the
            # clients it opened instead of leaving them to the garbage collector.
            await loop.start()
            started()
            await loop.run()
        finally:
            await loop.stop()
            if lifecycle is not None:
                await lifecycle.stop()
            await scorer.backend.close()
            if profiles is not None:
                await profiles.stop()
            await http.close()
            totals = metrics.accounting.totals()
            log.info("stopped: %s balanced=%s", totals, metrics.accounting.balanced())
