"""``scorer models list`` and ``scorer rules list`` (no pack directory): what the repository
holds, always, and what the live service serves, when the control plane answers.

The repository part needs nothing but the disk (a laptop, the CI of a model repository):
versions, checksums, cards (threshold, feature set, learner) and their integrity. The live
part is read once for every key from the control and status topics, with a short timeout,
and labelled as such; when Kafka does not answer the listing says so in one line.
"""

from __future__ import annotations

import msgspec

from scorer.errors import KafkaUnavailable, ModelError
from scorer.inference.repository import MODEL_FILE, list_versions, load_version, sha256_file
from scorer.kafka import read_latest
from scorer.lifecycle import rule_ops, transitions
from scorer.lifecycle.contract import feature_set_name
from scorer.lifecycle.control import DesiredState, ServingStatus
from scorer.lifecycle.ops import Context
from scorer.lifecycle.rulepacks import pack_of

LIVE_TIMEOUT_S = 3.0  # a reachable control plane answers in well under a second


class VersionRow(msgspec.Struct):
    version: str
    roles: list[str]  # live roles (desired, served by): empty when Kafka was not read
    integrity: str
    sha256: str
    threshold: float | None = None
    learner: str = ""
    created: str = ""
    rules: int | None = None  # rule packs: rules in the pack
    feature_set: str = ""  # models: the feature set the card declares


class KindListing(msgspec.Struct):
    kind: str
    model: str
    versions: list[VersionRow]
    desired: DesiredState | None = None
    scorers: list[ServingStatus] = []
    live: str = ""  # where the live part was read from; "" when it was not
    note: str = ""  # why the live part is missing


class Live(msgspec.Struct):
    """The control plane's latest records, every key at once."""

    source: str
    desired: dict[str, DesiredState]
    statuses: dict[str, list[ServingStatus]]

    def production(self, kind: str) -> str | None:
        desired, statuses = self.desired.get(kind), self.statuses.get(kind, [])
        if desired is None and not statuses:
            return None
        return transitions.current_production(desired, statuses, "")[0]


async def read_live(ctx: Context, timeout_s: float = LIVE_TIMEOUT_S) -> Live:
    """:class:`KafkaUnavailable` when the broker does not answer within ``timeout_s``."""
    kafka, lc = ctx.settings.kafka, ctx.lifecycle
    desired = await read_latest(kafka, lc.control_topic, DesiredState, role="control", timeout_s=timeout_s)
    statuses = await read_latest(kafka, lc.status_topic, ServingStatus, role="control", timeout_s=timeout_s)
    by_kind: dict[str, list[ServingStatus]] = {}
    for _, status in statuses.values():
        by_kind.setdefault(status.kind, []).append(status)
    source = f"control topic {lc.control_topic}, status topic {lc.status_topic} at {kafka.bootstrap_servers}"
    return Live(source, {k: v for k, (_, v) in desired.items()}, by_kind)


async def listing(ctx: Context, kinds: list[str], *, timeout_s: float = LIVE_TIMEOUT_S) -> list[KindListing]:
    live: Live | None = None
    note = ""
    try:
        live = await read_live(ctx, timeout_s)
    except KafkaUnavailable as exc:
        note = f"live serving state not shown: {exc}"
    return [_kind(ctx, kind, live, note) for kind in kinds]


def _kind(ctx: Context, kind: str, live: Live | None, note: str) -> KindListing:
    name = ctx.model(kind)
    desired = live.desired.get(kind) if live is not None else None
    scorers = sorted(live.statuses.get(kind, []), key=lambda s: s.process) if live is not None else []
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
        trained = rule_ops.trained_with(ctx.settings, live.production(rule_ops.EDR) if live is not None else None)
        rows = [_pack_row(ctx, name, v, roles.get(v, []), trained) for v in list_versions(ctx.repo, name)]
    else:
        rows = [_row(ctx, name, v, roles.get(v, [])) for v in list_versions(ctx.repo, name)]
    return KindListing(kind, name, rows, desired, scorers, live.source if live is not None else "", note)


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
    return VersionRow(version, roles, "ok", digest, card.threshold, card.learner, card.created,
                      feature_set=feature_set_name(card.feature_set))


def listing_text(items: list[KindListing]) -> str:
    lines: list[str] = []
    for k in items:
        pack = pack_of(k.kind) is not None
        lines.append(f"{k.kind}: {k.model} (repository)")
        lines.append(f"  {'version':>7}  {'sha256(pack)' if pack else 'sha256(model.onnx)':18}  {'integrity':9}  "
                     f"{'rules' if pack else 'threshold':>9}  {'' if pack else 'features  '}roles")
        for r in k.versions:
            col = (str(r.rules) if r.rules is not None else "-") if pack else (
                f"{r.threshold:.6g}" if r.threshold is not None else "-")
            features = "" if pack else f"{r.feature_set or '-':8}  "
            lines.append(f"  {r.version:>7}  {r.sha256[:16] + '..':18}  {r.integrity[:9]:9}  {col:>9}  "
                         f"{features}{', '.join(r.roles) or '-'}")
            if r.integrity != "ok":
                lines.append(f"           {r.integrity}")
        if k.live:
            lines.append(f"  live ({k.live}):")
            lines += _live_lines(k)
    notes = {k.note for k in items if k.note}
    lines += [f"note: {note}" for note in sorted(notes)]
    return "\n".join(lines)


def _live_lines(k: KindListing) -> list[str]:
    d = k.desired
    lines = [] if d is not None or k.scorers else ["    nothing recorded for this key yet"]
    if d is not None:
        lines.append(f"    desired: production {d.production}, shadow {d.shadow or '-'}, previous "
                     f"{d.previous or '-'} ({d.action} by {d.issued_by} at {d.issued_at}: {d.reason or '-'})")
    for s in k.scorers:
        refused = f"; REFUSED @{s.refused_offset}: {s.refused}" if s.refused else ""
        warning = f"; WARNING: {s.warning}" if s.warning else ""
        lines.append(f"    scorer {s.process}: production {s.production}, shadow {s.shadow or '-'} "
                     f"[{s.backend}] applied @{s.applied_offset} at {s.at}{refused}{warning}")
    return lines
