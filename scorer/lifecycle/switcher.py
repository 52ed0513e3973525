"""Desired states -> runtimes -> installed between micro-batches. No Kafka here.

- :meth:`ModelSwitcher.prepare` runs outside the scoring loop: verify, contract, Triton
  load, trial inference (:mod:`scorer.lifecycle.loader`). It takes seconds with Triton;
  batches keep flowing on the old version meanwhile, and the old version stays loaded
  until the switch is done; the production a switch replaces stays loaded too, which is
  what makes a rollback instant.
- :meth:`ModelSwitcher.install_ready` runs in ``ScoringLoop.between_batches``, while no
  batch is in flight: ``swap`` / ``set_shadow`` only replace references, so each batch is
  scored whole by one production version and no event is scored by none.

After an install, the versions it displaced that are neither production, shadow nor the
rollback target are unloaded (:mod:`scorer.lifecycle.retire`).

Rule packs (control key ``rules/<pack>``) take the same path: :meth:`prepare_rules` checks
them off the loop (:mod:`scorer.lifecycle.rule_switch`), the same ``install_ready``
installs them. A kind's shadow runtime is composed from its shadow model and, for EDR, the
candidate pack, each falling back to production's: a model switch keeps the live pack and
a pack switch keeps the live model.

A state whose preparation fails is refused as a whole: production and shadow stay as they
are, and the refusal is logged, counted and handed to ``report`` with its reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import msgspec

from scorer.errors import ModelError
from scorer.events.structs import EventKind
from scorer.inference.base import ModelRef
from scorer.lifecycle.control import DesiredState
from scorer.lifecycle.loader import Refused, RuntimeLoader
from scorer.lifecycle.retire import Retirer
from scorer.lifecycle.rule_switch import RulePacks, RulesReady
from scorer.lifecycle.rulepacks import pack_of
from scorer.metrics import LifecycleMetrics, ScorerMetrics
from scorer.pipeline.batch import KindRuntime
from scorer.pipeline.scoring import BatchScorer

log = logging.getLogger(__name__)

# (kind, refusal as (control offset, why) or None) -> publish the process's status
Report = Callable[[str, tuple[int, str] | None], Awaitable[None]]


class _Ready(NamedTuple):
    offset: int
    state: DesiredState
    production: KindRuntime
    shadow: KindRuntime | None
    prepare_s: float


class Switch(NamedTuple):
    """One install, for logs, tests and benchmarks."""

    kind: str
    production: str
    shadow: str | None
    prepare_s: float
    issued_to_installed_s: float | None


class ModelSwitcher:
    def __init__(self, scorer: BatchScorer, loader: RuntimeLoader, metrics: ScorerMetrics,
                 lifecycle_metrics: LifecycleMetrics, report: Report, *, retire_grace_s: float = 60.0,
                 rule_packs: RulePacks | None = None) -> None:
        self.scorer = scorer
        self.loader = loader
        self.metrics = metrics
        self.lm = lifecycle_metrics
        self.report = report
        self.rule_packs = rule_packs
        self.switches: list[Switch] = []
        self.applied: dict[str, int] = {}  # control key -> control offset of the state installed
        self.ready: dict[str, _Ready] = {}
        self.ready_rules: dict[str, RulesReady] = {}
        # The shadow model per kind (scorer.shadows holds it composed with a candidate pack).
        self.model_shadows: dict[str, KindRuntime] = {}
        # The production runtime each switch replaced, still loaded everywhere: a rollback
        # to it is a reference swap, with no verification or load in the way.
        self._retired: dict[str, KindRuntime] = {}
        self.retirer = Retirer(loader, retire_grace_s, self.kept)

    async def prepare(self, kind: EventKind, offset: int, state: DesiredState) -> bool:
        """Make ``state`` installable; False (and reported) when it is refused."""
        started = time.perf_counter()
        pending = self.ready.get(kind.value)
        live = pending.production if pending else self.scorer.runtimes[kind]
        live_shadow = pending.shadow if pending else self.model_shadows.get(kind.value)
        production: KindRuntime | None = None
        try:
            production = await self._runtime(kind, state.model, state.production, live, live_shadow)
            if self.rule_packs is not None and kind is EventKind.EDR:
                await self.rule_packs.learn(production.card)  # off the loop: the install only looks it up
            shadow = None
            if state.shadow is not None:
                shadow = await self._runtime(kind, state.model, state.shadow, live, live_shadow)
        except ModelError as exc:
            if production is not None:  # loaded for this state alone (the retirer keeps live ones)
                self.retirer.retire([production.model])
            await self._refuse(kind.value, offset, state, exc)
            return False
        prepare_s = time.perf_counter() - started
        self.lm.prepare_seconds.observe(prepare_s)
        self.ready[kind.value] = _Ready(offset, state, production, shadow, prepare_s)
        return True

    async def prepare_rules(self, key: str, offset: int, state: DesiredState) -> bool:
        """Make rule-pack ``state`` installable; False (and reported) when it is refused."""
        assert self.rule_packs is not None
        try:
            r = await self.rule_packs.prepare(state, self.ready_rules.get(key))
        except ModelError as exc:
            await self._refuse(key, offset, state, exc)
            return False
        self.rule_packs.rm.prepare_seconds.observe(r.prepare_s)
        self.ready_rules[key] = r._replace(offset=offset)
        return True

    def kept(self) -> set[ModelRef]:
        """Never unloaded: production, shadow and rollback target of each kind, and what a
        prepared state is about to install."""
        runtimes = [*self.scorer.runtimes.values(), *self.scorer.shadows.values(), *self._retired.values()]
        for r in self.ready.values():
            runtimes += [r.production, *([r.shadow] if r.shadow else [])]
        return {rt.model for rt in runtimes}

    def serving(self) -> list[ModelRef]:
        """Every model a batch may use now: production and shadow of each kind."""
        runtimes = [*self.scorer.runtimes.values(), *self.scorer.shadows.values()]
        return [rt.model for rt in runtimes]

    async def install_ready(self) -> None:
        if not (self.ready or self.ready_rules):  # the common case: two dict tests per loop iteration
            return
        ready, self.ready = self.ready, {}
        for kind, r in ready.items():
            self._install(kind, r)
            await self.report(kind, None)
        ready_rules, self.ready_rules = self.ready_rules, {}
        for key, rr in ready_rules.items():
            self._install_rules(key, rr)
            await self.report(key, None)

    async def _runtime(self, kind: EventKind, name: str, version: str, live: KindRuntime,
                       live_shadow: KindRuntime | None) -> KindRuntime:
        for rt in (live, live_shadow, self._retired.get(kind.value)):
            if rt is not None and rt.model.name == name and rt.model.version == version:
                return rt  # loaded and verified when it was installed: nothing to do again
        # The live feature set, not a fresh one: per-entity state must carry over the switch.
        return await self.loader.runtime(kind, name, version, live.features, live.rules)

    def _install(self, kind: str, r: _Ready) -> None:
        ek = r.production.kind
        old, old_shadow = self.scorer.runtimes[ek], self.model_shadows.get(kind)
        displaced = [rt.model for rt in (old, old_shadow, self._retired.get(kind)) if rt is not None]
        # The pack and its features as they are now: a pack switch may have landed since prepare.
        self.scorer.swap(msgspec.structs.replace(r.production, features=old.features, rules=old.rules))
        if r.shadow is None:
            self.model_shadows.pop(kind, None)
        else:
            self.model_shadows[kind] = r.shadow
        self._compose_shadow(ek)
        self.applied[kind] = r.offset
        latency = self._latency(r.state)
        self._count(kind, old, old_shadow, r, latency)
        self.retirer.retire(displaced)
        if ek is EventKind.EDR and self.rule_packs is not None:
            self.rule_packs.check_pairing()  # another model may have been trained on another pack
        self._log(Switch(kind, r.production.model.version, r.shadow.model.version if r.shadow else None,
                         r.prepare_s, latency), old.model.version, old_shadow.model.version if old_shadow else None,
                  r.state)

    def _install_rules(self, key: str, r: RulesReady) -> None:
        assert self.rule_packs is not None
        old, old_shadow = self.rule_packs.install(r)
        self._compose_shadow(EventKind.EDR)
        self.applied[key] = r.offset
        latency = self._latency(r.state)
        if latency is not None:
            self.rule_packs.rm.switch_seconds.observe(max(latency, 0.0))
        self._log(Switch(key, r.production.version, r.shadow.version if r.shadow else None, r.prepare_s, latency),
                  old, old_shadow, r.state)

    def _compose_shadow(self, kind: EventKind) -> None:
        """The shadow runtime of ``kind``: shadow model (else production's) with the candidate
        pack (else production's); none when neither is deployed."""
        live, model = self.scorer.runtimes[kind], self.model_shadows.get(kind.value)
        pack = self.rule_packs.shadow if self.rule_packs is not None and kind is EventKind.EDR else None
        if model is None and pack is None:
            self.scorer.set_shadow(kind, None)
            return
        base = model or live
        self.scorer.set_shadow(kind, msgspec.structs.replace(base, features=live.features, rules=pack or live.rules))

    @staticmethod
    def _latency(state: DesiredState) -> float | None:
        return time.time() - state.issued_ms / 1000 if state.issued_ms else None

    def _log(self, switch: Switch, old: str | None, old_shadow: str | None, state: DesiredState) -> None:
        self.switches.append(switch)
        log.info("%s: production %s -> %s, shadow %s -> %s (%s by %s: %s; prepared in %.2fs, %s after issue)",
                 switch.kind, old, switch.production, old_shadow, switch.shadow, state.action or "state",
                 state.issued_by, state.reason or "-", switch.prepare_s,
                 f"{switch.issued_to_installed_s:.2f}s" if switch.issued_to_installed_s is not None else "?")

    def _count(self, kind: str, old: KindRuntime, old_shadow: KindRuntime | None, r: _Ready,
               latency: float | None) -> None:
        m, lm, new = self.metrics, self.lm, r.production.model
        if old.model != new:
            self._retired[kind] = old
            m.model_info.remove(kind, old.model.name, old.model.version)
            m.model_info.labels(kind, new.name, new.version).set(1)
            lm.switches.labels(kind, "production", new.name, new.version).inc()
        if old_shadow is not None and (r.shadow is None or old_shadow.model != r.shadow.model):
            lm.shadow_info.remove(kind, old_shadow.model.name, old_shadow.model.version)
        if r.shadow is not None and (old_shadow is None or old_shadow.model != r.shadow.model):
            lm.shadow_info.labels(kind, r.shadow.model.name, r.shadow.model.version).set(1)
            lm.switches.labels(kind, "shadow", r.shadow.model.name, r.shadow.model.version).inc()
        if latency is not None:
            lm.switch_seconds.observe(max(latency, 0.0))

    async def _refuse(self, key: str, offset: int, state: DesiredState, exc: ModelError) -> None:
        reason, failed = (exc.reason, exc.version) if isinstance(exc, Refused) else ("model", state.production)
        if pack_of(key) is not None and self.rule_packs is not None:
            self.rule_packs.rm.refusals.labels(state.model, failed, reason).inc()
            live = self.rule_packs.production
            serving = live.version if live is not None else None
        else:
            self.lm.refusals.labels(key, state.model, failed, reason).inc()
            serving = self.scorer.runtimes[EventKind(key)].model.version
        log.error("%s: refused %s (issued by %s): %s; still serving %s", key, state.action or "state",
                  state.issued_by, exc, serving)
        await self.report(key, (offset, f"{reason}: {exc}"))
