"""The lifecycle controller inside every scorer process.

It follows the control topic with its own group-less consumer (every process of a group
sees every change) and, per kind, turns the latest desired state into runtimes:

- *prepare* runs in a background task: verify, contract, Triton load, trial inference
  (:mod:`scorer.lifecycle.loader`). It takes seconds with Triton, so it must not run in
  the scoring loop: batches keep flowing on the old version meanwhile, and the old version
  stays loaded until the switch is done (it is never unloaded by a switch, which is also
  what makes a rollback instant).
- *install* runs in ``ScorerService.between_batches``, i.e. while no batch is in flight:
  ``swap`` / ``set_shadow`` only replace references, so every batch is scored whole by one
  production version and no event is scored by none.

A state whose preparation fails is refused as a whole: production (and shadow) stay as
they are; the refusal is logged, counted (``scorer_model_refusals_total``) and reported to
the status topic, where ``scorer models list`` shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, NamedTuple

from scorer.config import Settings
from scorer.errors import ModelError
from scorer.events.structs import EventKind
from scorer.lifecycle.control import (
    DesiredState,
    LifecycleSettings,
    ServingStatus,
    assign_from_start,
    behind,
    decode_into,
    ensure_topics,
    group_less_consumer,
    now_iso,
    process_id,
    status_record,
)
from scorer.lifecycle.loader import Refused, RuntimeLoader
from scorer.lifecycle.shadow import ShadowPublisher
from scorer.pipeline.kafka_io import make_producer
from scorer.pipeline.scoring import BatchScorer, KindRuntime
from scorer.service.metrics import LifecycleMetrics, ScorerMetrics

if TYPE_CHECKING:
    from scorer.pipeline.service import ScorerService

log = logging.getLogger(__name__)


class _Ready(NamedTuple):
    offset: int
    state: DesiredState
    production: KindRuntime
    shadow: KindRuntime | None


class Switch(NamedTuple):
    """One install, for logs, tests and benchmarks."""

    kind: str
    production: str
    shadow: str | None
    prepare_s: float
    issued_to_installed_s: float | None


class LifecycleController:
    def __init__(self, settings: Settings, lifecycle: LifecycleSettings, scorer: BatchScorer,
                 metrics: ScorerMetrics) -> None:
        self.settings = settings
        self.lifecycle = lifecycle
        self.scorer = scorer
        self.metrics = metrics
        self.lm = LifecycleMetrics(metrics.registry)
        self.loader = RuntimeLoader(settings.inference.model_repository, scorer.backend,
                                    sync_command=lifecycle.sync_command, sync_timeout_s=lifecycle.sync_timeout_s)
        self.process = process_id(settings.kafka)
        self.shadow_publisher = ShadowPublisher(lifecycle.shadow_topic, self.lm)
        self.switches: list[Switch] = []
        self._desired: dict[str, tuple[int, DesiredState]] = {}
        self._handled: dict[str, int] = {}
        self._ready: dict[str, _Ready] = {}
        self._prepare_s: dict[str, float] = {}
        self._applied: dict[str, int] = {}
        # The production runtime each switch replaced, still loaded everywhere: a rollback
        # to it is a reference swap, with no verification or load in the way.
        self._retired: dict[str, KindRuntime] = {}
        self._consumer = group_less_consumer(settings.kafka)
        self._producer = make_producer(settings.kafka)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read the control topic to its end and prepare what it asks for; the first
        ``between_batches`` call installs it, before the first batch."""
        await ensure_topics(self.settings.kafka, self.lifecycle)
        await self._producer.start()
        await self._consumer.start()
        tps = await assign_from_start(self._consumer, self.lifecycle.control_topic)
        end = await self._consumer.end_offsets(tps) if tps else {}
        while await behind(self._consumer, end):
            await self._poll(200)
        await self._prepare_all()
        for kind in self.scorer.runtimes:
            if kind.value not in self._ready:
                await self._report(kind.value)
        self._task = asyncio.create_task(self._follow(), name="lifecycle-follow")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()
        await self._producer.stop()

    def attach(self, service: ScorerService) -> None:
        service.between_batches.append(self.between_batches)
        service.output_hooks.append(self.shadow_publisher)

    # -- in the scoring loop, between micro-batches ------------------------------------

    async def between_batches(self) -> None:
        if not self._ready:  # the common case: one dict test per loop iteration
            return
        ready, self._ready = self._ready, {}
        for kind, r in ready.items():
            self._install(kind, r)
            await self._report(kind)

    def _install(self, kind: str, r: _Ready) -> None:
        old = self.scorer.runtimes[r.production.kind]
        old_shadow = self.scorer.shadows.get(r.production.kind)
        self.scorer.swap(r.production)
        self.scorer.set_shadow(r.production.kind, r.shadow)
        installed_ms = time.time() * 1000
        self._applied[kind] = r.offset
        m, lm = self.metrics, self.lm
        if old.model != r.production.model:
            self._retired[kind] = old
            m.model_info.remove(kind, old.model.name, old.model.version)
            m.model_info.labels(kind, r.production.model.name, r.production.model.version).set(1)
            lm.switches.labels(kind, "production", r.production.model.name, r.production.model.version).inc()
        if old_shadow is not None and (r.shadow is None or old_shadow.model != r.shadow.model):
            lm.shadow_info.remove(kind, old_shadow.model.name, old_shadow.model.version)
        if r.shadow is not None and (old_shadow is None or old_shadow.model != r.shadow.model):
            lm.shadow_info.labels(kind, r.shadow.model.name, r.shadow.model.version).set(1)
            lm.switches.labels(kind, "shadow", r.shadow.model.name, r.shadow.model.version).inc()
        latency = (installed_ms - r.state.issued_ms) / 1000 if r.state.issued_ms else None
        if latency is not None:
            lm.switch_seconds.observe(max(latency, 0.0))
        switch = Switch(kind, r.production.model.version, r.shadow.model.version if r.shadow else None,
                        self._prepare_s.get(kind, 0.0), latency)
        self.switches.append(switch)
        log.info("%s: production %s -> %s, shadow %s -> %s (%s by %s: %s; prepared in %.2fs, %s after issue)",
                 kind, old.model.version, switch.production, old_shadow.model.version if old_shadow else None,
                 switch.shadow, r.state.action or "state", r.state.issued_by, r.state.reason or "-",
                 switch.prepare_s, f"{latency:.2f}s" if latency is not None else "?")

    # -- in the background ---------------------------------------------------------------

    async def _follow(self) -> None:
        while True:
            try:
                await self._poll(1000)
                await self._prepare_all()
            except asyncio.CancelledError:
                raise
            except Exception:  # the control plane must never take the scorer down
                log.exception("lifecycle controller: unexpected error; retrying")
                await asyncio.sleep(1.0)

    async def _poll(self, timeout_ms: int) -> None:
        fetched = await self._consumer.getmany(timeout_ms=timeout_ms)
        for messages in fetched.values():
            for msg in messages:
                decode_into(self._desired, msg.key, msg.value, msg.offset, DesiredState)

    async def _prepare_all(self) -> None:
        served = {k.value: k for k in self.scorer.runtimes}
        for kind, (offset, state) in list(self._desired.items()):
            if kind in served and self._handled.get(kind) != offset:
                self._handled[kind] = offset
                await self._prepare(served[kind], offset, state)

    async def _prepare(self, kind: EventKind, offset: int, state: DesiredState) -> None:
        started = time.perf_counter()
        pending = self._ready.get(kind.value)
        live = pending.production if pending else self.scorer.runtimes[kind]
        live_shadow = pending.shadow if pending else self.scorer.shadows.get(kind)
        try:
            production = await self._runtime(kind, state.model, state.production, live, live_shadow)
            shadow = None
            if state.shadow is not None:
                shadow = await self._runtime(kind, state.model, state.shadow, live, live_shadow)
        except ModelError as exc:
            await self._refuse(kind.value, offset, state, exc)
            return
        self._prepare_s[kind.value] = time.perf_counter() - started
        self.lm.prepare_seconds.observe(self._prepare_s[kind.value])
        self._ready[kind.value] = _Ready(offset, state, production, shadow)

    async def _runtime(self, kind: EventKind, name: str, version: str, live: KindRuntime,
                       live_shadow: KindRuntime | None) -> KindRuntime:
        for rt in (live, live_shadow, self._retired.get(kind.value)):
            if rt is not None and rt.model.name == name and rt.model.version == version:
                return rt  # loaded and verified when it was installed: nothing to do again
        # The live feature set, not a fresh one: per-entity state must carry over the switch.
        return await self.loader.runtime(kind, name, version, live.features)

    async def _refuse(self, kind: str, offset: int, state: DesiredState, exc: ModelError) -> None:
        reason, failed = (exc.reason, exc.version) if isinstance(exc, Refused) else ("model", state.production)
        self.lm.refusals.labels(kind, state.model, failed, reason).inc()
        log.error("%s: refused %s (issued by %s): %s; still serving %s", kind, state.action or "state",
                  state.issued_by, exc, self.scorer.runtimes[EventKind(kind)].model.version)
        await self._report(kind, refused=(offset, f"{reason}: {exc}"))

    async def _report(self, kind: str, refused: tuple[int, str] | None = None) -> None:
        ek = EventKind(kind)
        rt, shadow = self.scorer.runtimes[ek], self.scorer.shadows.get(ek)
        status = ServingStatus(
            process=self.process, kind=kind, model=rt.model.name, production=rt.model.version,
            shadow=shadow.model.version if shadow else None, backend=self.scorer.backend.name,
            applied_offset=self._applied.get(kind, -1), refused=refused[1] if refused else None,
            refused_offset=refused[0] if refused else -1, at=now_iso(),
        )
        record = status_record(self.lifecycle.status_topic, status)
        # Enqueued, not awaited to the ack: the scoring loop must not wait on the status topic.
        await self._producer.send(record.topic, record.value, key=record.key)


async def start_lifecycle(
    service: ScorerService, lifecycle: LifecycleSettings | None = None
) -> LifecycleController | None:
    """Attach a started controller to ``service`` (``None`` when switched off)."""
    lifecycle = lifecycle or LifecycleSettings()
    if not lifecycle.enabled:
        return None
    controller = LifecycleController(service.settings, lifecycle, service.scorer, service.metrics)
    await controller.start()
    controller.attach(service)
    return controller
