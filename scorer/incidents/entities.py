"""What the incident stage reads of a Detection Finding: its :class:`Member` (:func:`digest`).

OCSF 1.8 moved a finding's entities (``src_endpoint``, ``dst_endpoint``, ``device``,
``process``, ``user``...) from the top level into ``evidences[]``; findings written before
that (OCSF 1.3, still on the alert topics for as long as they are retained) have them at
the top. Every evidence is read first and the top level after it, so both layouts give the
same digest; ``evidences[].data`` (the scored event, kept whole by the scorer) adds the
host, user and addresses the source named even where no OCSF object carries them.

Host names are case-insensitive (Windows, DNS) and are lower-cased, as the scorer keys
its alerts (:func:`scorer.events.structs.entity_key`).

The digest reads a finding through its typed view (:mod:`scorer.incidents.finding_view`):
the router's :func:`~scorer.incidents.finding_view.decode_finding`, or a decoded JSON object
coerced to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec import UNSET

from scorer.alerts.attack import TACTIC_IDS

from .finding_view import Finding, _Info, _Scope, as_finding
from .model import Member

_TACTIC_BY_NAME = {name.replace("_", " "): uid for name, uid in TACTIC_IDS.items()}
_KINDS = ("netflow", "edr", "siem")
MAX_VALUES = 32  # hosts, addresses, users, rules, tactics, techniques kept of one finding
MAX_TEXT = 512  # longer names are not entities (an evidence dumped into a field)


class Unattributed(ValueError):
    """The finding names no host, IP or user: it cannot be correlated (dead-lettered with
    this reason rather than dropped or lumped with others)."""


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
