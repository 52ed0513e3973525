"""OCSF Detection Finding (class 2004) for one scored event.

Reference: OCSF 1.8.0 ``detection_finding`` (category 2 Findings), profiles
``security_control`` (``confidence_score``) and, when it names the host, ``host``
(``device``). The source event is linked by uid in ``finding_info.related_events``;
``evidences[0]`` names its entities (:mod:`scorer.alerts.evidence`) and carries it whole in
``data``, so a SOC never has to go back to the input topic to see what was scored. What
OCSF has no attribute for (score, model, top features, rule hits...) is under
``unmapped.scorer``; tests check every finding against the compiled official schema.
Strings reach the JSON encoder as they are, so the evidence stays exact; :func:`encode`
escapes what msgspec leaves raw (DEL, the C1 controls such as the 8-bit CSI, and U+2028/
U+2029), so no raw control character reaches a downstream reader and a crafted field
cannot break the JSON or inject lines. The display text (``finding_info.desc``) has its
control characters made visible (``\x1b``), so it is safe even after decoding.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import NamedTuple

import msgspec

from scorer import __version__
from scorer.alerts.attack import TACTIC_IDS, tactic_title
from scorer.alerts.decide import SEVERITY_IDS, Decision
from scorer.alerts.evidence import Device, Evidence, device, evidence
from scorer.alerts.textsafe import escape_json, visible
from scorer.events.structs import EndpointEvent, Event, FlowRecord, SourceRef
from scorer.rules import RuleMeta

OCSF_VERSION = "1.8.0"
# Profiles whose attributes a finding uses: security_control brings confidence_score, host
# the top-level device (declared only by findings that name one).
PROFILES = ("security_control",)
PROFILES_HOST = ("host", "security_control")
CLASS_UID = 2004
CATEGORY_UID = 2
ACTIVITY_CREATE = 1
ANALYTIC_LEARNING = 4  # OCSF analytic type_id 4: "Learning (ML/DL)"
ANALYTIC_RULE = 1  # OCSF analytic type_id 1: "Rule"
_TS_LIMIT_S = (1 << 63) // 1000 / 1000  # seconds whose milliseconds fit OCSF's timestamp_t

_TITLES = {
    "netflow": "Suspicious network flow",
    "edr": "Suspicious endpoint activity",
    "siem": "Alert likely part of an attack",
}


# The finding is built from Structs, not dicts: msgspec encodes a Struct without a
# per-key lookup, and the parts shared by every alert of a model (product, analytic) are
# built once. ``UNSET`` context objects are left out of the JSON altogether.
class _Product(msgspec.Struct, frozen=True):
    name: str
    vendor_name: str
    version: str


class _Metadata(msgspec.Struct):
    version: str
    uid: str
    product: _Product
    original_time: str
    log_name: str
    processed_time: int
    profiles: tuple[str, ...] = PROFILES


class _Analytic(msgspec.Struct, frozen=True):
    """An OCSF analytic: the model that scored the event (type Learning), or a detection
    rule that fired on it (type Rule, in ``finding_info.related_analytics``)."""

    name: str
    uid: str
    version: str
    type_id: int = ANALYTIC_LEARNING
    type: str = "Learning (ML/DL)"
    category: str | msgspec.UnsetType = msgspec.UNSET
    desc: str | msgspec.UnsetType = msgspec.UNSET


class _Tactic(msgspec.Struct, frozen=True):
    name: str
    uid: str


class _Attack(msgspec.Struct, frozen=True):
    tactic: _Tactic
    version: str = "ATT&CK"


class _RelatedEvent(msgspec.Struct):
    uid: str
    type: str


class _FindingInfo(msgspec.Struct):
    uid: str
    title: str
    desc: str
    types: list[str]
    first_seen_time: int | msgspec.UnsetType
    last_seen_time: int | msgspec.UnsetType
    analytic: _Analytic
    related_events: list[_RelatedEvent]
    related_analytics: tuple[_Analytic, ...] | msgspec.UnsetType = msgspec.UNSET
    attacks: tuple[_Attack, ...] | msgspec.UnsetType = msgspec.UNSET


class _TopFeature(msgspec.Struct):
    name: str
    value: float
    contribution: float


class _ModelId(msgspec.Struct, frozen=True):
    name: str
    version: str


class _Position(msgspec.Struct):
    topic: str
    partition: int
    offset: int


class _RuleHit(msgspec.Struct, frozen=True):
    """What an analyst reads of a rule that fired; ``author`` is kept as the rule's licence
    (DRL 1.1) asks."""

    id: str
    title: str
    level: str
    author: str
    tags: tuple[str, ...]
    techniques: tuple[str, ...]
    kind: str
    file: str


class _ScorerDetails(msgspec.Struct):
    score: float
    threshold: float
    backend: str
    model: _ModelId
    top_features: list[_TopFeature]
    source: _Position
    event_uid: str
    kind: str
    # Who raised the alert: "model", "rules" or "model+rules".
    raised_by: str = "model"
    rules: tuple[_RuleHit, ...] | msgspec.UnsetType = msgspec.UNSET
    rule_pack: str | msgspec.UnsetType = msgspec.UNSET


class _Unmapped(msgspec.Struct):
    scorer: _ScorerDetails


class DetectionFinding(msgspec.Struct, kw_only=True):
    """OCSF 1.8 Detection Finding (class 2004), activity Create, in OCSF's field names."""

    activity_id: int = ACTIVITY_CREATE
    activity_name: str = "Create"
    category_uid: int = CATEGORY_UID
    category_name: str = "Findings"
    class_uid: int = CLASS_UID
    class_name: str = "Detection Finding"
    type_uid: int = CLASS_UID * 100 + ACTIVITY_CREATE
    type_name: str = "Detection Finding: Create"
    severity_id: int
    severity: str
    status_id: int = 1
    status: str = "New"
    time: int
    confidence_score: int
    metadata: _Metadata
    finding_info: _FindingInfo
    evidences: list[Evidence]
    unmapped: _Unmapped
    device: Device | msgspec.UnsetType = msgspec.UNSET


_PRODUCT = _Product("scorer", "scorer", __version__)


@functools.lru_cache(maxsize=64)
def _model_parts(model_name: str, model_version: str) -> tuple[_Analytic, _ModelId]:
    return _Analytic(model_name, f"{model_name}:{model_version}", model_version), _ModelId(model_name, model_version)


def detection_finding(
    *,
    kind: str,
    event: Event,
    decision: Decision,
    model_name: str,
    model_version: str,
    threshold: float,
    backend: str,
    ref: SourceRef,
    now_ms: int | None = None,
    rules: Sequence[RuleMeta] = (),
    rule_pack: str = "",
) -> DetectionFinding:
    """The OCSF Detection Finding for ``event``; :func:`encode` makes it JSON.

    ``rules`` (most severe first) are the detection rules that fired on the event: each
    becomes a related analytic of type Rule, their ATT&CK tactics the finding's
    ``attacks``, and the title is the top rule's when a rule raised the alert, so one
    finding carries both the model's score and every rule's reason."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    # A timestamp past OCSF's 64-bit long (a hostile or garbled ts) is left to original_time.
    event_ms = int(event.ts * 1000) if abs(event.ts) < _TS_LIMIT_S else msgspec.UNSET
    alert_uid = f"{model_name}:{model_version}:{event.uid}"
    analytic, model_id = _model_parts(model_name, model_version)
    host = device(event)
    top = decision.top_features
    reasons = ", ".join([name for name, _, _ in top]) or "model score"
    title = _TITLES.get(kind, "Suspicious event")
    related: tuple[_Analytic, ...] | msgspec.UnsetType = msgspec.UNSET
    attacks: tuple[_Attack, ...] | msgspec.UnsetType = msgspec.UNSET
    hits: tuple[_RuleHit, ...] | msgspec.UnsetType = msgspec.UNSET
    pack: str | msgspec.UnsetType = msgspec.UNSET
    if rules:  # built once per set of rules (_rule_parts)
        parts = _rule_parts(rules if type(rules) is tuple else tuple(rules), rule_pack)
        title = parts.title if decision.by_rule else title
        reasons = parts.reasons + reasons
        related, attacks, hits, pack = parts.related, parts.attacks, parts.hits, rule_pack
    return DetectionFinding(
        severity_id=SEVERITY_IDS.get(decision.severity, 0),
        severity=decision.severity,
        time=now_ms,
        confidence_score=round(decision.score * 100),
        metadata=_Metadata(OCSF_VERSION, alert_uid, _PRODUCT, str(event.ts), ref.topic, now_ms,
                           PROFILES if host is msgspec.UNSET else PROFILES_HOST),
        finding_info=_FindingInfo(
            alert_uid, title, visible(f"{_what(event)}; score {decision.score:.3f}; driven by {reasons}"), [kind],
            event_ms, event_ms, analytic, [_RelatedEvent(event.uid, kind)], related, attacks,
        ),
        # Ground truth (label) is for evaluation, never for the SOC's view; events omit
        # default fields when encoded, so a None label leaves no key behind.
        evidences=[evidence(event if event.label is None else msgspec.structs.replace(event, label=None))],
        unmapped=_Unmapped(_ScorerDetails(
            round(decision.score, 6), threshold, backend, model_id,
            [_TopFeature(n, v, c) for n, v, c in top],
            _Position(ref.topic, ref.partition, ref.offset), event.uid, kind,
            ("model+rules" if decision.by_model else "rules") if decision.by_rule else "model", hits, pack,
        )),
        device=host,
    )


class _RuleParts(NamedTuple):
    """What a finding says of the rules that fired on its event: the same for every event
    with the same hits, so built once per set of rules."""

    title: str  # the top rule's, when a rule raised the alert
    reasons: str  # the head of the description's reasons
    related: tuple[_Analytic, ...]
    attacks: tuple[_Attack, ...] | msgspec.UnsetType
    hits: tuple[_RuleHit, ...]


@functools.lru_cache(maxsize=4096)
def _rule_parts(rules: tuple[RuleMeta, ...], pack: str) -> _RuleParts:
    related = tuple(
        _Analytic(r.title, r.id, pack, ANALYTIC_RULE, "Rule", r.logsource,
                  f"Sigma rule, level {r.level}, by {r.author or 'unknown'}")
        for r in rules
    )
    tactics = sorted({t for r in rules for t in r.tactics if t in TACTIC_IDS})
    attacks = tuple(_Attack(_Tactic(tactic_title(t), TACTIC_IDS[t])) for t in tactics) if tactics else msgspec.UNSET
    hits = tuple(_RuleHit(r.id, r.title, r.level, r.author, r.tags, r.techniques, r.kind, r.file) for r in rules)
    shown = "; ".join(f"{r.title} ({r.level})" for r in rules[:3])
    more = f" and {len(rules) - 3} more" if len(rules) > 3 else ""
    return _RuleParts(visible(rules[0].title), f"rules {shown}{more}; features ", related, attacks, hits)


_ENCODER = msgspec.json.Encoder()


def encode(finding: DetectionFinding) -> bytes:
    """The finding as JSON with no raw control character in its bytes."""
    return escape_json(_ENCODER.encode(finding))


def _what(event: Event) -> str:
    if isinstance(event, FlowRecord):
        return f"{event.proto} {event.src_ip}:{event.src_port} -> {event.dst_ip}:{event.dst_port}"
    if isinstance(event, EndpointEvent):
        return f"event {event.event_code} on {event.host}" + (f" by {event.image}" if event.image else "")
    return f"{event.source_system} alert {event.rule_name!r}" + (f" on {event.host}" if event.host else "")
