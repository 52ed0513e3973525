"""Assembling a scorer from settings: backend, per-kind runtimes, service, HTTP."""

from __future__ import annotations

import logging
from pathlib import Path

from scorer.config import Settings
from scorer.errors import ModelError
from scorer.events.structs import EventKind
from scorer.features import feature_set
from scorer.inference.base import InferenceBackend
from scorer.inference.failover import FailoverBackend
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.inference.repository import load_version
from scorer.inference.triton import TritonBackend
from scorer.pipeline.scoring import BatchScorer, KindRuntime
from scorer.profiles.view import TopicProfileView
from scorer.rules.annotate import RuleStage
from scorer.service.gctune import tune_gc
from scorer.service.http import HealthServer
from scorer.service.metrics import ScorerMetrics
from scorer.service.signals import stop_on_signals

log = logging.getLogger(__name__)


def build_runtimes(
    settings: Settings, profiles: TopicProfileView | None = None, rules: RuleStage | None = None,
) -> dict[EventKind, KindRuntime]:
    """One runtime per kind, computing the feature set its model's card names (v1 cards keep
    v1). Profile features read ``profiles`` when given, else in-process local profiles.
    ``rules`` (the loaded rule pack) runs on EDR events before their features."""
    inf = settings.inference
    runtimes: dict[EventKind, KindRuntime] = {}
    for kind in settings.kinds:
        version = load_version(inf.model_repository, inf.models[kind.value], inf.versions.get(kind.value, ""))
        source = profiles.source(kind) if profiles is not None else None
        stage = rules if kind is EventKind.EDR else None
        if version.card.feature_set == "v3" and stage is None:
            raise ModelError(f"{version.card.name}:{version.card.version} reads rule-hit features (feature "
                             "set v3): detection rules must be on (SCORER_RULES__ENABLED=true)")
        features = feature_set(kind, version.card.feature_set, source, stage.by_id if stage is not None else None)
        runtimes[kind] = KindRuntime.build(kind, features, version.card, stage)
    return runtimes


def load_rules(settings: Settings) -> RuleStage | None:
    """The configured rule pack, when rules are on and EDR is scored."""
    if not settings.rules.enabled or EventKind.EDR not in settings.kinds:
        return None
    r = settings.rules
    return RuleStage.load(r.repository, r.pack, r.version)


def build_backend(settings: Settings, runtimes: dict[EventKind, KindRuntime]) -> InferenceBackend:
    inf = settings.inference
    local = OnnxRuntimeBackend(inf.model_repository, offload_rows=inf.offload_rows)
    if inf.backend == "onnxruntime":
        return local
    triton = TritonBackend(
        inf.triton_url, timeout_s=inf.triton_timeout_s, ssl=inf.triton_ssl,
        root_certificates=_file(inf.triton_root_certificates), private_key=_file(inf.triton_private_key),
        certificate_chain=_file(inf.triton_certificate_chain),
    )
    if inf.on_triton_outage == "fallback":
        return FailoverBackend(triton, local)
    return triton


def _file(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def build_scorer(settings: Settings, profiles: TopicProfileView | None = None) -> BatchScorer:
    runtimes = build_runtimes(settings, profiles, load_rules(settings))
    return BatchScorer(
        runtimes,
        build_backend(settings, runtimes),
        alerts_prefix=settings.topics.alerts_prefix,
        dead_letter_topic=settings.topics.dead_letter,
        max_record_bytes=settings.batch.max_record_bytes,
        max_dead_letter_bytes=settings.topics.dead_letter_max_bytes,
    )


async def run_service(settings: Settings) -> None:
    """``scorer run``: consume until SIGTERM/SIGINT, then finish the batch in flight."""
    from scorer.lifecycle.controller import start_lifecycle
    from scorer.pipeline.service import ScorerService

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
    service = ScorerService(settings, scorer, metrics)
    if profiles is not None:
        service.partition_listeners.append(profiles)  # follows the assignment (profiles.partitions)
    http = HealthServer(metrics.registry, lambda: service.ready, host=settings.http.host, port=settings.http.port)
    await http.start()
    log.info("metrics and health on http://%s:%d", settings.http.host, http.port)
    stop_on_signals(service.request_stop)
    # Model lifecycle (control topic): versions asked for there are installed before the first batch.
    lifecycle = await start_lifecycle(service)
    try:
        # Inside the try: a start that fails (wrong password, unknown CA) still closes the
        # clients it opened instead of leaving them to the garbage collector.
        await service.start()
        tune_gc()
        await service.run()
    finally:
        await service.stop()
        if lifecycle is not None:
            await lifecycle.stop()
        await scorer.backend.close()
        if profiles is not None:
            await profiles.stop()
        await http.close()
        totals = metrics.accounting.totals()
        log.info("stopped: %s balanced=%s", totals, metrics.accounting.balanced())
