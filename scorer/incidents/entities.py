"""Everything the incident stage reads of a Detection Finding, in one place.

OCSF 1.8 moved a finding's entities (``src_endpoint``, ``dst_endpoint``, ``device``,
``process``, ``user``...) from the top level into ``evidences[]``; findings written before
that (OCSF 1.3, still on the alert topics for as long as they are retained) have them at
the top. Every evidence is read first and the top level after it, so both layouts give the
same digest; ``evidences[].data`` (the scored event, kept whole by the scorer) adds the
host, user and addresses the source named even where no OCSF object carries them.

Host names are case-insensitive (Windows, DNS) and are lower-cased, as the scorer keys
its alerts (:func:`scorer.events.structs.entity_key`).

Reading: the router decodes a finding's bytes straight into the typed view below
(:func:`decode_finding`): only the fields the digest reads become Python objects, the rest
of the ~1.2 kB (descriptions, features, the event's other fields) is skipped by the
decoder; that and the attribute access are most of the router's CPU per finding. Where a
finding does not fit that view (a field of another JSON type than the view expects: a
hostile or broken producer), it is decoded as plain JSON and coerced to the view with the
rules the digest has always applied to such values (an object where an object belongs,
else nothing; the objects of a list), so both paths give the same digest for every input.
The leaves stay ``Any``: every leaf's type is checked where it is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin

import msgspec
from msgspec import UNSET

from scorer.alerts.attack import TACTIC_IDS

from .model import Member

_TACTIC_BY_NAME = {name.replace("_", " "): uid for name, uid in TACTIC_IDS.items()}
_KINDS = ("netflow", "edr", "siem")
MAX_VALUES = 32  # hosts, addresses, users, rules, tactics, techniques kept of one finding
MAX_TEXT = 512  # longer names are not entities (an evidence dumped into a field)


class Unattributed(ValueError):
    """The finding names no host, IP or user: it cannot be correlated (dead-lettered with
    this reason rather than dropped or lumped with others)."""


# The typed view of a finding: only what the digest reads. ``UNSET`` where the digest tells
# a missing key from a null one. gc=False: decoded trees never hold cycles.
class _Host(msgspec.Struct, gc=False):  # a device or an endpoint (which has no name)
    hostname: Any = None
    name: Any = None
    ip: Any = None


class _User(msgspec.Struct, gc=False):
    name: Any = None


class _WithUser(msgspec.Struct, gc=False):  # process, actor
    user: _User | None = None


class _Fields(msgspec.Struct, gc=False):  # a Sysmon/Wazuh event's own fields
    Initiated: Any = None  # the event's own field name
    srcip: Any = UNSET


class _Data(msgspec.Struct, gc=False):  # the scored event
    host: Any = None
    user: Any = None
    src_ip: Any = None
    dst_ip: Any = None
    event_code: Any = None
    rule_name: Any = UNSET
    fields: _Fields | None = None


class _Scope(msgspec.Struct, gc=False):
    """Where entity objects may sit: an evidence (1.8), or the finding itself (1.3)."""

    device: _Host | None = None
    src_endpoint: _Host | None = None
    dst_endpoint: _Host | None = None
    process: _WithUser | None = None
    user: _User | None = None
    actor: _WithUser | None = None
    data: _Data | None = None


class _Reference(msgspec.Struct, gc=False):  # a tactic, technique, sub-technique or analytic
    uid: Any = None
    name: Any = None
    type_id: Any = None


class _Attack(msgspec.Struct, gc=False):
    tactic: _Reference | None = None
    technique: _Reference | None = None
    sub_technique: _Reference | None = None


class _Info(msgspec.Struct, gc=False):
    uid: Any = None
    title: Any = None
    first_seen_time: Any = UNSET
    types: Any = None
    attacks: list[_Attack] | None = None
    # The model that scored the event; the detection rules that fired are the related
    # analytics of type 1 (Rule): suppressions name either.
    analytic: _Reference | None = None
    related_analytics: list[_Reference] | None = None


class _Rule(msgspec.Struct, gc=False):
    techniques: Any = None


class _ScorerPart(msgspec.Struct, gc=False):
    kind: Any = None
    rules: list[_Rule] | None = None


class _Unmapped(msgspec.Struct, gc=False):
    scorer: _ScorerPart | None = None


class _Metadata(msgspec.Struct, gc=False):
    uid: Any = None


class Finding(_Scope, gc=False):
    """What the incident stage reads of a Detection Finding (either layout)."""

    finding_info: _Info | None = None
    metadata: _Metadata | None = None
    time: Any = None
    severity_id: Any = None
    evidences: list[_Scope] | None = None
    attacks: list[_Attack] | None = None
    unmapped: _Unmapped | None = None


_TYPED = msgspec.json.Decoder(Finding)
_JSON = msgspec.json.Decoder()
S = TypeVar("S", bound=msgspec.Struct)
_SHAPES: dict[type[msgspec.Struct], list[tuple[str, str, Any]]] = {}


def _shape(cls: type[msgspec.Struct]) -> list[tuple[str, str, Any]]:
    """(field, "object" / "objects" / "leaf", struct type) of a view class."""
    shape = _SHAPES.get(cls)
    if shape is None:
        shape = []
        for field in msgspec.structs.fields(cls):
            name = field.name
            inner = next((a for a in get_args(field.type) if a is not type(None)), None)
            if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
                shape.append((name, "object", inner))
            elif get_origin(inner) is list:
                shape.append((name, "objects", get_args(inner)[0]))
            else:
                shape.append((name, "leaf", None))
        _SHAPES[cls] = shape
    return shape


def _coerce(doc: Mapping[str, Any], cls: type[S]) -> S:
    """``doc`` (plain JSON) as the view ``cls``, whatever its values: a value that is not an
    object where the view has one reads as absent, a list keeps only its objects."""
    values: dict[str, Any] = {}
    for name, how, sub in _shape(cls):
        if name not in doc:
            continue
        value = doc[name]
        if how == "leaf":
            values[name] = value
        elif how == "object":
            if type(value) is dict:
                values[name] = _coerce(value, sub)
        elif type(value) is list:
            values[name] = [_coerce(v, sub) for v in value if type(v) is dict]
    return cls(**values)


def as_finding(doc: Mapping[str, Any]) -> Finding:
    """A decoded finding (a JSON object as a dict) as the typed view."""
    try:
        return msgspec.convert(doc, Finding)
    except msgspec.ValidationError:
        return _coerce(doc, Finding)


def decode_finding(raw: bytes | None) -> Finding:
    """A finding's JSON bytes as the typed view; ``msgspec.DecodeError`` when they are not
    JSON or not a JSON object."""
    if raw is None:
        raise msgspec.DecodeError("not a JSON object")
    try:
        return _TYPED.decode(raw)
    except msgspec.DecodeError:  # not JSON, or a value the view does not expect (rare)
        doc = _JSON.decode(raw)
    if type(doc) is not dict:
        raise msgspec.DecodeError("not a JSON object")
    return _coerce(doc, Finding)


def _text(value: Any) -> str:
    return value.strip() if type(value) is str else ""


def _clean(values: list[Any], *, lower: bool = False) -> list[str]:
    """The usable names among ``values``, in order, without repeats."""
    out: list[str] = []
    for value in values:
        if type(value) is not str:
            continue
        text = value.strip().lower() if lower else value.strip()
        # Bounded: a crafted finding with thousands of evidences must not make a huge digest
        # (every list is capped again per incident, Policy.max_items).
        if text and len(out) < MAX_VALUES and len(text) <= MAX_TEXT and text not in out:
            out.append(text)
    return out


def _scopes(finding: Finding) -> list[_Scope]:
    """Each evidence (1.8), then the finding itself (1.3)."""
    return [*finding.evidences, finding] if finding.evidences else [finding]


def _entities(scopes: list[_Scope]) -> tuple[list[str], list[str], list[str], str, str]:
    # Candidates first, cleaned once per list (a call per value was a third of the digest).
    own: list[Any] = []  # the device's own names come first: the key is taken from them
    hosts: list[Any] = []
    ips: list[Any] = []
    users: list[Any] = []
    src = dst = ""
    for scope in scopes:
        if (device := scope.device) is not None:
            own.append(device.hostname or device.name)
            ips.append(device.ip)
        if (endpoint := scope.src_endpoint) is not None:
            ips.append(endpoint.ip)
            hosts.append(endpoint.hostname)
            src = src or _text(endpoint.ip)
        if (endpoint := scope.dst_endpoint) is not None:
            ips.append(endpoint.ip)
            hosts.append(endpoint.hostname)
            dst = dst or _text(endpoint.ip)
        if (process := scope.process) is not None and process.user is not None:
            users.append(process.user.name)
        if (user := scope.user) is not None:
            users.append(user.name)
        if (actor := scope.actor) is not None and actor.user is not None:
            users.append(actor.user.name)
        if (data := scope.data) is not None:  # the scored event itself
            own.append(data.host)
            users.append(data.user)
            ips += (data.src_ip, data.dst_ip)
            src = src or _text(data.src_ip)
            dst = dst or _text(data.dst_ip)
    own_names = _clean(own, lower=True)
    return (own_names + [h for h in _clean(hosts, lower=True) if h not in own_names], _clean(ips), _clean(users),
            src, dst)


def _attacks(finding: Finding, info: _Info | None) -> tuple[list[str], list[str]]:
    tactics: list[Any] = []
    techniques: list[Any] = []
    for attack in [*(info.attacks or () if info is not None else ()), *(finding.attacks or ())]:
        if (tactic := attack.tactic) is not None:
            tactics.append(tactic.uid or _TACTIC_BY_NAME.get(_text(tactic.name).lower()))
        for tech in (attack.technique, attack.sub_technique):
            if tech is not None:
                techniques.append(_text(tech.uid).upper())
    scorer = finding.unmapped.scorer if finding.unmapped is not None else None
    for rule in scorer.rules or () if scorer is not None else ():
        listed = rule.techniques
        for tech in listed if type(listed) is list else ():  # a hostile finding may put anything here
            techniques.append(_text(tech).upper())
    return _clean(tactics), _clean(techniques)


def _own_address(scopes: list[_Scope]) -> str:
    """The address the finding's host itself has, where the event says so unambiguously.

    OCSF's ``device.ip`` is the device's own. Of the scored event: a Sysmon network
    connection (event 3) names the local end by ``Initiated`` (outbound: the source); a
    SIEM alert with a single address that is not a remote peer's (AIT-ADS' ``ip`` column,
    a Wazuh agent's address) is the host's. Logon events' ``IpAddress`` (4624/4625), a
    Wazuh ``srcip`` or a Suricata flow name the *other* end: linking those would put an
    attacker's address on its victim and every flow of the attacker in the victim's incident.
    """
    for scope in scopes:
        own = _text(scope.device.ip) if scope.device is not None else ""
        if own:
            return own
        data = scope.data
        if data is None:
            continue
        fields = data.fields
        if data.event_code == 3:
            initiated = _text(fields.Initiated if fields is not None else None).lower()
            if initiated in ("true", "false"):
                return _text(data.src_ip if initiated == "true" else data.dst_ip)
        elif data.rule_name is not UNSET and not data.dst_ip and (fields is None or fields.srcip is UNSET):
            return _text(data.src_ip)
    return ""


def _kind(finding: Finding, info: _Info | None, topic: str) -> str:
    scorer = finding.unmapped.scorer if finding.unmapped is not None else None
    kind = _text(scorer.kind) if scorer is not None else ""
    if kind in _KINDS:
        return kind
    types = info.types if info is not None else None
    if isinstance(types, list) and types and types[0] in _KINDS:
        return str(types[0])
    suffix = topic.rsplit(".", 1)[-1]
    return suffix if suffix in _KINDS else "unknown"


def digest(finding: Finding | Mapping[str, Any], *, topic: str = "", partition: int = -1,
           offset: int = -1) -> Member:
    """The :class:`Member` of one Detection Finding (either layout): its typed view
    (:func:`decode_finding`), or the decoded JSON object.

    Raises :class:`Unattributed` when it has no uid, no time or no entity.
    """
    f = finding if isinstance(finding, Finding) else as_finding(finding)
    info = f.finding_info
    uid = _text(info.uid) if info is not None else ""
    uid = uid or (_text(f.metadata.uid) if f.metadata is not None else "")
    if not uid or len(uid) > 2 * MAX_TEXT:
        raise Unattributed("finding has no usable uid (finding_info.uid / metadata.uid)")
    time_ms = info.first_seen_time if info is not None and info.first_seen_time is not UNSET else f.time
    if type(time_ms) is not int or not 0 <= time_ms < 2**63:
        raise Unattributed(f"finding {uid} has no usable time (finding_info.first_seen_time / time, epoch ms)")
    scopes = _scopes(f)
    hosts, ips, users, src, dst = _entities(scopes)
    if not (hosts or ips or users):
        raise Unattributed(f"finding {uid} names no host, IP or user")
    # The flow's source first: the key falls back to it (links.correlation_key).
    ips = [ip for ip in (src, dst) if ip] + [ip for ip in ips if ip not in (src, dst)]
    tactics, techniques = _attacks(f, info)
    rules = _clean([a.uid for a in info.related_analytics or () if a.type_id == 1] if info is not None else [])
    severity = f.severity_id
    return Member(
        uid=uid, kind=_kind(f, info, topic), time_ms=time_ms,
        severity_id=severity if type(severity) is int and 0 <= severity <= 6 else 0,
        title=_text(info.title)[:200] if info is not None else "",
        model=_text(info.analytic.name)[:MAX_TEXT] if info is not None and info.analytic is not None else "",
        rules=tuple(rules), tactics=tuple(tactics), techniques=tuple(techniques),
        hosts=tuple(hosts), ips=tuple(ips), users=tuple(users), own_ip=_own_address(scopes)[:MAX_TEXT],
        topic=topic, partition=partition, offset=offset,
    )
