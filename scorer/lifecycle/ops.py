"""What ``scorer models|rules deploy/promote/rollback`` do, apart from argument parsing
(``list``: :mod:`scorer.lifecycle.listing`).

A key is an event kind (its model) or ``rules/<pack>`` (a rule pack, :mod:`scorer.lifecycle.rule_ops`
holds its own checks); the control topic, the transitions and the waiting are the same.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from scorer.config import LifecycleSettings, Settings
from scorer.errors import ModelError
from scorer.inference import triton_config
from scorer.inference.repository import ModelCard, ModelVersion, load_version
from scorer.kafka import read_latest
from scorer.lifecycle import rule_ops, transitions
from scorer.lifecycle.contract import feature_set_mismatch, version_problems
from scorer.lifecycle.control import (
    DesiredState,
    ServingStatus,
    ensure_topics,
    issuer,
    now_iso,
    publish,
    state_record,
)
from scorer.lifecycle.rulepacks import pack_of


@dataclass(frozen=True)
class Context:
    settings: Settings
    lifecycle: LifecycleSettings
    repo: Path  # the model repository, or the rule repository for rule-pack keys

    def model(self, kind: str) -> str:
        """The model of a kind, or the pack of a ``rules/<pack>`` key."""
        pack = pack_of(kind)
        if pack is not None:
            return pack
        try:
            return self.settings.inference.models[kind]
        except KeyError:
            raise ModelError(f"no model configured for kind {kind!r}") from None

    def configured(self, kind: str) -> str:
        """The version a scorer starts on when nothing else names one."""
        pack = pack_of(kind)
        if pack is not None:
            return rule_ops.configured_version(self.settings, self.repo, pack)
        return self.settings.inference.versions.get(kind, "")


class Change(msgspec.Struct):
    state: DesiredState
    offset: int
    production_source: str
    applied: list[ServingStatus] = []
    refused: list[ServingStatus] = []
    warnings: list[str] = []


def pin_versions(ctx: Context, kind: str, versions: set[str | None]) -> list[int]:
    """Make the model's Triton configs name exactly the versions in use.

    publish_version writes ``latest: 2``; Triton restarted in explicit mode loads what the
    config names, so without this a restart after a third version drops production (and a
    batch for a version Triton does not know fails). Parsed and written with Triton's own
    ModelConfig protobuf, so the rest of the config is kept as is.
    """
    wanted = sorted({int(v) for v in versions if v})
    triton_config.pin_versions(ctx.repo / ctx.model(kind), wanted)
    return wanted


async def pin_current(ctx: Context, kind: str) -> list[int]:
    """Pin the versions the control topic names (production, shadow, previous)."""
    desired, statuses = await kafka_state(ctx, kind)
    if desired is not None:
        return pin_versions(ctx, kind, {desired.production, desired.shadow, desired.previous})
    production = transitions.current_production(None, statuses, ctx.configured(kind))
    return pin_versions(ctx, kind, {production[0]})


def servable(ctx: Context, kind: str, version: str) -> ModelVersion:
    """Fail fast on this machine with what every scorer would refuse anyway."""
    mv = load_version(ctx.repo, ctx.model(kind), version)  # IntegrityError on a tampered file
    problems = version_problems(mv, kind)
    if problems:
        raise ModelError(f"{mv.name}:{version} does not fit the {kind} contract: " + "; ".join(problems))
    return mv


def _card_or_none(ctx: Context, kind: str, version: str) -> ModelCard | None:
    """Production's card, for its feature set; None when this machine's repository lacks it
    (the scorers still refuse another feature set on their own)."""
    try:
        return load_version(ctx.repo, ctx.model(kind), version, verify=False).card
    except ModelError:
        return None


async def kafka_state(
    ctx: Context, kind: str, *, timeout_s: float = 10.0
) -> tuple[DesiredState | None, list[ServingStatus]]:
    kafka, lc = ctx.settings.kafka, ctx.lifecycle
    desired = await read_latest(kafka, lc.control_topic, DesiredState, role="control", timeout_s=timeout_s)
    statuses = await read_latest(kafka, lc.status_topic, ServingStatus, role="control", timeout_s=timeout_s)
    entry = desired.get(kind)
    return (entry[1] if entry else None), [s for _, s in statuses.values() if s.kind == kind]


async def change(
    ctx: Context, kind: str, action: str, *, version: str | None, reason: str,
    issued_by: str | None = None, production: str | None = None, wait_s: float = 0.0,
) -> Change:
    """Write the next desired state of ``kind`` to the control topic (and wait for it)."""
    await ensure_topics(ctx.settings.kafka, ctx.lifecycle)
    desired, statuses = await kafka_state(ctx, kind)
    configured = production or ctx.configured(kind)
    current, source = transitions.current_production(desired if not production else None, statuses, configured)
    issue = transitions.Issue(kind, ctx.model(kind), issued_by or issuer(), reason, int(time.time() * 1000))
    if action == "deploy-shadow":
        if version is None:
            raise ModelError("deploy --shadow needs --version")
        state = transitions.deploy_shadow(issue, desired, current, version)
    elif action == "promote":
        state = transitions.promote(issue, desired, current, version)
    elif action == "rollback":
        state = transitions.rollback(issue, desired, current, version)
    elif action == "clear-shadow":
        state = transitions.clear_shadow(issue, desired, current)
    else:
        raise ValueError(action)
    warnings = (rule_ops.accept(ctx.settings, ctx.repo, state, current, await _edr_production(ctx))
                if pack_of(kind) is not None else _accept_model(ctx, kind, state, current))
    # Stamped as it is written: the switch time the scorers measure starts here, not before
    # this machine's own checks (a pack's take a second or two).
    state = msgspec.structs.replace(state, issued_at=now_iso(), issued_ms=int(time.time() * 1000))
    offset = await publish(ctx.settings.kafka, state_record(ctx.lifecycle.control_topic, state))
    result = Change(state, offset, source, warnings=warnings)
    if wait_s > 0:
        await _wait(ctx, kind, result, wait_s)
    return result


def _accept_model(ctx: Context, kind: str, state: DesiredState, current: str) -> list[str]:
    """Refuse what the scorers would refuse; pin Triton's configs to the versions in use."""
    live = _card_or_none(ctx, kind, current)
    for v in {state.production, state.shadow} - {None, current}:
        mv = servable(ctx, kind, str(v))
        why = feature_set_mismatch(kind, mv.card, live.feature_names) if live is not None else None
        if why:
            raise ModelError(why)
    pin_versions(ctx, kind, {state.production, state.shadow, state.previous})
    return []


async def _edr_production(ctx: Context) -> str | None:
    """The EDR model in production (control topic, else the scorers' reports), if known."""
    desired, statuses = await kafka_state(ctx, rule_ops.EDR)
    if desired is None and not statuses:
        return None
    return transitions.current_production(desired, statuses, "")[0]


async def _wait(ctx: Context, kind: str, result: Change, timeout_s: float) -> None:
    """Until some scorer reports this state applied or refused (each process reports once
    per state; see ``scorer models list`` for the whole group)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _, statuses = await kafka_state(ctx, kind)
        result.applied = [s for s in statuses if s.applied_offset >= result.offset]
        result.refused = [s for s in statuses if s.refused_offset >= result.offset]
        if result.applied or result.refused:
            return
        await asyncio.sleep(0.3)
