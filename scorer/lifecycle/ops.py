"""What ``scorer models|rules deploy/promote/rollback/list`` do, apart from argument parsing.

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
from scorer.errors import KafkaUnavailable, ModelError
from scorer.inference import triton_config
from scorer.inference.repository import (
    MODEL_FILE,
    ModelCard,
    ModelVersion,
    list_versions,
    load_version,
    sha256_file,
)
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


class VersionRow(msgspec.Struct):
    version: str
    roles: list[str]
    integrity: str
    sha256: str
    threshold: float | None = None
    learner: str = ""
    created: str = ""
    rules: int | None = None  # rule packs: rules in the pack


class KindListing(msgspec.Struct):
    kind: str
    model: str
    versions: list[VersionRow]
    desired: DesiredState | None = None
    scorers: list[ServingStatus] = []
    note: str = ""


def _pack_row(ctx: Context, name: str, version: str, roles: list[str], trained: tuple[str, str] | None) -> VersionRow:
    integrity, digest, rules = rule_ops.version_facts(ctx.repo, name, version)
    if trained is not None and digest == trained[1]:
        roles = [*roles, f"{trained[0]} trained on it"]
    return VersionRow(version, roles, integrity, digest, rules=rules)


def _row(ctx: Context, name: str, version: str, roles: list[str]) -> VersionRow:
    path = ctx.repo / name / version / MODEL_FILE
    digest = sha256_file(path) if path.is_file() else "-"
    try:
        card = load_version(ctx.repo, name, version).card
    except ModelError as exc:
        return VersionRow(version, roles, f"REFUSED: {exc}", digest)
    return VersionRow(version, roles, "ok", digest, card.threshold, card.learner, card.created)


async def listing(ctx: Context, kinds: list[str]) -> list[KindListing]:
    out = []
    for kind in kinds:
        name = ctx.model(kind)
        desired: DesiredState | None = None
        scorers: list[ServingStatus] = []
        note = ""
        try:
            desired, scorers = await kafka_state(ctx, kind)
        except KafkaUnavailable as exc:
            note = f"control topic not read ({exc}); roles from the repository only"
        roles: dict[str, list[str]] = {}
        if desired is not None:
            for role, v in (("desired production", desired.production), ("desired shadow", desired.shadow),
                            ("previous", desired.previous)):
                if v:
                    roles.setdefault(v, []).append(role)
        for s in scorers:
            for role, v in ((f"served by {s.process}", s.production), (f"shadow in {s.process}", s.shadow)):
                if v:
                    roles.setdefault(v, []).append(role)
        if pack_of(kind) is not None:
            trained = rule_ops.trained_with(ctx.settings, None if note else await _edr_production(ctx))
            rows = [_pack_row(ctx, name, v, roles.get(v, []), trained) for v in list_versions(ctx.repo, name)]
        else:
            rows = [_row(ctx, name, v, roles.get(v, [])) for v in list_versions(ctx.repo, name)]
        out.append(KindListing(kind, name, rows, desired, sorted(scorers, key=lambda s: s.process), note))
    return out


def listing_text(items: list[KindListing]) -> str:
    lines: list[str] = []
    for k in items:
        lines.append(f"{k.kind}: {k.model}" + (f"  ({k.note})" if k.note else ""))
        d = k.desired
        if d is not None:
            lines.append(f"  desired: production {d.production}, shadow {d.shadow or '-'}, previous "
                         f"{d.previous or '-'} ({d.action} by {d.issued_by} at {d.issued_at}: {d.reason or '-'})")
        pack = pack_of(k.kind) is not None
        lines.append(f"  {'version':>7}  {'sha256(pack)' if pack else 'sha256(model.onnx)':18}  {'integrity':9}  "
                     f"{'rules' if pack else 'threshold':>9}  roles")
        for r in k.versions:
            col = (str(r.rules) if r.rules is not None else "-") if pack else (
                f"{r.threshold:.6g}" if r.threshold is not None else "-")
            lines.append(f"  {r.version:>7}  {r.sha256[:16] + '..':18}  {r.integrity[:9]:9}  {col:>9}  "
                         f"{', '.join(r.roles) or '-'}")
            if r.integrity != "ok":
                lines.append(f"           {r.integrity}")
        for s in k.scorers:
            refused = f"; REFUSED @{s.refused_offset}: {s.refused}" if s.refused else ""
            warning = f"; WARNING: {s.warning}" if s.warning else ""
            lines.append(f"  scorer {s.process}: production {s.production}, shadow {s.shadow or '-'} "
                         f"[{s.backend}] applied @{s.applied_offset} at {s.at}{refused}{warning}")
    return "\n".join(lines)

