"""The rule-pack side of :class:`scorer.lifecycle.switcher.ModelSwitcher`: desired pack
states -> checked packs -> installed between micro-batches. No Kafka here.

The EDR runtime holds one rule pack (``KindRuntime.rules``) and the feature set reading its
metadata; a pack switch replaces those two references and keeps the model, as a model
switch keeps the pack. A candidate pack in shadow rides on the shadow runtime (with the
shadow model if one is deployed, else production's model): the pipeline runs it on
production's rows (:func:`scorer.pipeline.rules.shadow_rules`).

Kept loaded: production, shadow, and the production pack the last switch replaced (the
rollback target: a rollback is a reference swap). A displaced pack is dropped with its
last reference: it belongs to this process alone (~64 MB for the shipped pack).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import NamedTuple

from scorer.events.structs import EventKind
from scorer.features.base import FeatureSet
from scorer.inference.repository import ModelCard
from scorer.lifecycle.control import DesiredState
from scorer.lifecycle.rulepacks import (
    PackIdentity,
    check_pack,
    features_for,
    identity,
    trained_identity,
    untrained_warning,
    with_rules,
)
from scorer.metrics import ScorerMetrics
from scorer.metrics.rulepacks import RulePackMetrics
from scorer.pipeline.scoring import BatchScorer
from scorer.rules.annotate import RuleStage

log = logging.getLogger(__name__)
EDR = EventKind.EDR


class RulesReady(NamedTuple):
    offset: int
    state: DesiredState
    production: RuleStage
    features: FeatureSet  # production's feature set over the new pack (same per-entity state)
    shadow: RuleStage | None
    prepare_s: float


class RulePacks:
    """The pack each role holds in this process, and the steps that change them."""

    def __init__(self, scorer: BatchScorer, repository: Path, metrics: ScorerMetrics, rm: RulePackMetrics) -> None:
        self.scorer = scorer
        self.repository = repository
        self.metrics = metrics
        self.rm = rm
        self.shadow: RuleStage | None = None
        self.retired: RuleStage | None = None
        self.warning: str | None = None  # the model reads hits of a pack it was not trained with
        # Computed off the loop (prepare, start, learn): the install only looks them up.
        self._identities: dict[tuple[str, str], PackIdentity] = {}
        self._trained: dict[tuple[str, str], PackIdentity | None] = {}  # model card -> its training pack

    @property
    def production(self) -> RuleStage | None:
        rt = self.scorer.runtimes.get(EDR)
        return rt.rules if rt is not None else None

    async def start(self) -> None:
        """Identify the configured pack and the model's training pack, and say where they stand."""
        live = self.scorer.runtimes.get(EDR)
        if live is not None and live.rules is not None:
            await self._identify(live.rules)
            await self.learn(live.card)
            self.check_pairing()

    async def learn(self, card: ModelCard) -> None:
        """Find the pack ``card`` was trained with (before a model switch installs it)."""
        key = (card.name, card.version)
        if key not in self._trained:
            self._trained[key] = await asyncio.to_thread(trained_identity, self.repository, card)

    async def prepare(self, state: DesiredState, pending: RulesReady | None) -> RulesReady:
        """Every pack ``state`` names, checked (or the loaded one of that version); raises
        :class:`scorer.lifecycle.loader.Refused` on the first that fails."""
        started = time.perf_counter()
        live = self.scorer.runtimes[EDR]
        loaded = [s for s in (pending.production if pending else None, pending.shadow if pending else None,
                              live.rules, self.shadow, self.retired) if s is not None]
        production = await self._stage(state.model, state.production, loaded)
        shadow = await self._stage(state.model, state.shadow, loaded) if state.shadow else None
        features = live.features
        if production is not live.rules:
            features = await asyncio.to_thread(features_for, live.features, production)
        return RulesReady(-1, state, production, features, shadow, time.perf_counter() - started)

    async def _stage(self, pack: str, version: str, loaded: list[RuleStage]) -> RuleStage:
        for stage in loaded:
            if stage.name == pack and stage.version == version:
                return stage  # checked when it was installed: nothing to do again
        stage = await asyncio.to_thread(check_pack, self.repository, pack, version)
        await self._identify(stage)
        return stage

    async def _identify(self, stage: RuleStage) -> None:
        key = (stage.name, stage.version)
        if key not in self._identities:
            self._identities[key] = await asyncio.to_thread(identity, self.repository / stage.name / stage.version)

    def install(self, r: RulesReady) -> tuple[str | None, str | None]:
        """Swap references only (between micro-batches); returns the old production and
        shadow versions, for the log."""
        live = self.scorer.runtimes[EDR]
        old, old_shadow = live.rules, self.shadow
        if r.production is not old:
            self.scorer.swap(with_rules(live, r.production, r.features))
            self.retired = old
        self.shadow = r.shadow
        self._count(old, old_shadow, r)
        self.check_pairing()
        return (old.version if old else None), (old_shadow.version if old_shadow else None)

    def check_pairing(self) -> None:
        """Warn (log, status, gauge) while the EDR model reads hits of a pack its card does not
        name as the one it was trained with. Allowed: docs/rules.md says why."""
        live = self.scorer.runtimes.get(EDR)
        if live is None or live.rules is None:
            return
        stage = live.rules
        served = self._identities.get((stage.name, stage.version))
        trained = self._trained.get((live.card.name, live.card.version))
        warning = untrained_warning(live.card, stage.name, stage.version, served, trained) if served else None
        self.rm.untrained.clear()
        if warning is not None:
            self.rm.untrained.labels(stage.name, stage.version, f"{live.model.name}:{live.model.version}").set(1)
            if warning != self.warning:
                log.warning("rule pack %s:%s: %s", stage.name, stage.version, warning)
        self.warning = warning

    def _count(self, old: RuleStage | None, old_shadow: RuleStage | None, r: RulesReady) -> None:
        new, info = r.production, self.metrics.rule_pack_info
        if old is not new:
            if old is not None:
                info.remove(old.name, old.version, str(len(old.by_id)))
            info.labels(new.name, new.version, str(len(new.by_id))).set(1)
            self.rm.switches.labels(new.name, "production", new.version).inc()
        if old_shadow is not None and old_shadow is not r.shadow:
            self.rm.shadow_info.remove(old_shadow.name, old_shadow.version)
        if r.shadow is not None and old_shadow is not r.shadow:
            self.rm.shadow_info.labels(r.shadow.name, r.shadow.version).set(1)
            self.rm.switches.labels(r.shadow.name, "shadow", r.shadow.version).inc()
