"""The lifecycle controller inside every scorer process: the control plane's Kafka side.

It follows the control topic with its own group-less consumer (every process of a group
sees every change, and a restarted process starts from the latest state), hands each new
desired state of a kind it serves, or of the rule pack it runs (key ``rules/<pack>``), to
:class:`scorer.lifecycle.switcher.ModelSwitcher` (prepare in this background task, install
between micro-batches), and reports what the process serves, or why it refused a state, to
the status topic.
"""

from __future__ import annotations

import asyncio
import logging
import time

from scorer.config import LifecycleSettings, Settings
from scorer.events.structs import EventKind
from scorer.kafka import assign_from_start, make_producer, make_reader, read_to_end
from scorer.kafka.compacted import decode_into
from scorer.lifecycle.control import DesiredState, ServingStatus, ensure_topics, now_iso, process_id, status_record
from scorer.lifecycle.loader import RuntimeLoader
from scorer.lifecycle.rule_switch import RulePacks
from scorer.lifecycle.rulepacks import control_key, pack_of
from scorer.lifecycle.shadow import ShadowPublisher
from scorer.lifecycle.switcher import ModelSwitcher, Switch
from scorer.metrics import LifecycleMetrics, ScorerMetrics
from scorer.metrics.rulepacks import RulePackMetrics
from scorer.pipeline.loop import ScoringLoop
from scorer.pipeline.scoring import BatchScorer
from scorer.shutdown import cancel_and_wait

log = logging.getLogger(__name__)


class LifecycleController:
    def __init__(self, settings: Settings, lifecycle: LifecycleSettings, scorer: BatchScorer,
                 metrics: ScorerMetrics) -> None:
        self.settings = settings
        self.lifecycle = lifecycle
        self.scorer = scorer
        lm, rm = LifecycleMetrics(metrics.registry), RulePackMetrics(metrics.registry)
        loader = RuntimeLoader(settings.inference.model_repository, scorer.backend,
                               sync_command=lifecycle.sync_command, sync_timeout_s=lifecycle.sync_timeout_s)
        edr = scorer.runtimes.get(EventKind.EDR)
        # The pack this process runs is the one it follows: key rules/<its name>.
        self.rules_key = control_key(edr.rules.name) if edr is not None and edr.rules is not None else None
        packs = RulePacks(scorer, settings.rules.repository, metrics, rm) if self.rules_key else None
        self.switcher = ModelSwitcher(scorer, loader, metrics, lm, self._report,
                                      retire_grace_s=lifecycle.retire_grace_s, rule_packs=packs)
        self.shadow_publisher = ShadowPublisher(lifecycle.shadow_topic, lm, rm)
        self.process = process_id(settings.kafka)
        self._desired: dict[str, tuple[int, DesiredState]] = {}
        self._handled: dict[str, int] = {}
        # No group: every process reads the whole control topic; nothing is committed.
        self._consumer = make_reader(settings.kafka, "control", fetch_max_wait_ms=200)
        self._producer = make_producer(settings.kafka)
        self._task: asyncio.Task[None] | None = None

    @property
    def switches(self) -> list[Switch]:
        return self.switcher.switches

    async def start(self) -> None:
        """Read the control topic to its end and prepare what it asks for; the first
        ``between_batches`` call installs it, before the first batch."""
        await ensure_topics(self.settings.kafka, self.lifecycle)
        await self._producer.start()
        await self._consumer.start()
        tps = await assign_from_start(self._consumer, self.lifecycle.control_topic)
        await read_to_end(self._consumer, tps, self._poll)
        if self.switcher.rule_packs is not None:
            await self.switcher.rule_packs.start()
        await self._prepare_all()
        for kind in self.scorer.runtimes:
            if kind.value not in self.switcher.ready:
                await self._report(kind.value, None)
        if self.rules_key is not None and self.rules_key not in self.switcher.ready_rules:
            await self._report(self.rules_key, None)
        self._task = asyncio.create_task(self._follow(), name="lifecycle-follow")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        await self._consumer.stop()
        await self._producer.stop()

    def attach(self, loop: ScoringLoop) -> None:
        loop.between_batches.append(self.switcher.install_ready)
        loop.output_hooks.append(self.shadow_publisher)

    async def _follow(self) -> None:
        next_check = time.monotonic() + self.lifecycle.reconcile_s
        while True:
            try:
                await self._poll(1000)
                await self._prepare_all()
                await self.switcher.retirer.unload_due()  # after preparing: never unloads what it installs
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.lifecycle.reconcile_s
                    await self.switcher.loader.ensure_served(self.switcher.serving())
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
        for key, (offset, state) in list(self._desired.items()):
            if self._handled.get(key) == offset or (key not in served and key != self.rules_key):
                continue
            self._handled[key] = offset  # a refused state is not retried until re-issued
            if key == self.rules_key:
                await self.switcher.prepare_rules(key, offset, state)
            else:
                await self.switcher.prepare(served[key], offset, state)

    async def _report(self, key: str, refused: tuple[int, str] | None) -> None:
        packs, warning = self.switcher.rule_packs, None
        if pack_of(key) is not None and packs is not None and packs.production is not None:
            name, production = packs.production.name, packs.production.version
            shadow, backend, warning = (packs.shadow.version if packs.shadow else None), "rules", packs.warning
        else:
            rt, model_shadow = self.scorer.runtimes[EventKind(key)], self.switcher.model_shadows.get(key)
            name, production, backend = rt.model.name, rt.model.version, self.scorer.backend.name
            shadow = model_shadow.model.version if model_shadow else None
        status = ServingStatus(
            process=self.process, kind=key, model=name, production=production, shadow=shadow, backend=backend,
            applied_offset=self.switcher.applied.get(key, -1), refused=refused[1] if refused else None,
            refused_offset=refused[0] if refused else -1, at=now_iso(), warning=warning,
        )
        record = status_record(self.lifecycle.status_topic, status)
        # Enqueued, not awaited to the ack: the scoring loop must not wait on the status topic.
        await self._producer.send(record.topic, record.value, key=record.key)


async def start_lifecycle(
    loop: ScoringLoop, lifecycle: LifecycleSettings | None = None
) -> LifecycleController | None:
    """Attach a started controller to ``loop`` (``None`` when switched off)."""
    lifecycle = lifecycle or loop.settings.lifecycle
    if not lifecycle.enabled:
        return None
    controller = LifecycleController(loop.settings, lifecycle, loop.scorer, loop.metrics)
    try:
        await controller.start()
    except BaseException:
        await controller.stop()  # close the clients it opened (e.g. the broker refused us)
        raise
    controller.attach(loop)
    return controller
