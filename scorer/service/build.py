"""Assembly: a :class:`BatchScorer` built from settings (backend, rule pack, per-kind
runtimes). Nothing here starts or connects anything; :mod:`scorer.service.run` does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from scorer.config import Settings
from scorer.errors import ConfigError, ModelError
from scorer.events.structs import EventKind
from scorer.features import feature_set
from scorer.inference.base import InferenceBackend
from scorer.inference.failover import FailoverBackend
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.inference.repository import load_version
from scorer.lifecycle.loader import split_backend
from scorer.pipeline.batch import KindRuntime
from scorer.pipeline.scoring import BatchScorer
from scorer.profiles.view import TopicProfileView
from scorer.rules.annotate import RuleStage


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
    # The compiled and vectorized engines load the runtimes' versions at start: the compiled
    # one builds (or finds) their libraries then (seconds each, the first time), and both
    # check them against ONNX Runtime then, not inside the first batch.
    compiled = inf.in_process_engine != "onnxruntime"
    local = OnnxRuntimeBackend(inf.model_repository, [rt.model for rt in runtimes.values()] if compiled else None,
                               offload_rows=inf.offload_rows, engine=inf.in_process_engine,
                               compiled_cache=inf.compiled_cache)
    if inf.backend == "onnxruntime":
        return local
    from scorer.inference.triton import TritonBackend  # (tritonclient's gRPC stack: only when asked for)
    from scorer.inference.triton_shm import SharedMemoryTritonBackend

    options: dict[str, Any] = dict(
        timeout_s=inf.triton_timeout_s, ssl=inf.triton_ssl,
        root_certificates=_file(inf.triton_root_certificates), private_key=_file(inf.triton_private_key),
        certificate_chain=_file(inf.triton_certificate_chain),
    )
    triton = (SharedMemoryTritonBackend(inf.triton_url, max_in_flight=inf.triton_max_in_flight, **options)
              if inf.triton_shared_memory else TritonBackend(inf.triton_url, **options))
    if inf.on_triton_outage == "pause" and inf.in_process_below_rows:
        raise ConfigError("inference.in_process_below_rows scores small calls in process: it needs "
                          "inference.on_triton_outage=fallback (pause keeps scoring off this host)")
    if inf.on_triton_outage == "fallback":
        return FailoverBackend(triton, local, local_below_rows=inf.in_process_below_rows)
    return triton


def register_engine_metrics(backend: InferenceBackend, registry: CollectorRegistry) -> None:
    """The in-process backend's engine metrics (``scorer_inference_engine``, its fallbacks)
    on the service's registry, when the backend scores in process (itself or as fallback)."""
    _, local = split_backend(backend)
    if local is not None:
        local.metrics.register(registry)


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
