"""Everything the incident stage reads of a Detection Finding, in one place.

OCSF 1.8 moved a finding's entities (``src_endpoint``, ``dst_endpoint``, ``device``,
``process``, ``user``...) from the top level into ``evidences[]``; findings written before
that (OCSF 1.3, still on the alert topics for as long as they are retained) have them at
the top. Every evidence is read first and the top level after it, so both layouts give the
same digest; ``evidences[].data`` (the scored event, kept whole by the scorer) adds the
host, user and addresses the source named even where no OCSF object carries them.

Host names are case-insensitive (Windows, DNS) and are lower-cased, as the scorer keys
its alerts (:func:`scorer.events.structs.entity_key`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from scorer.alerts.attack import TACTIC_IDS

from .model import Member

_TACTIC_BY_NAME = {name.replace("_", " "): uid for name, uid in TACTIC_IDS.items()}
_KINDS = ("netflow", "edr", "siem")
MAX_VALUES = 32  # hosts, addresses, users, rules, tactics, techniques kept of one finding
MAX_TEXT = 512  # longer names are not entities (an evidence dumped into a field)


class Unattributed(ValueError):
    """The finding names no host, IP or user: it cannot be correlated (dead-lettered with
    this reason rather than dropped or lumped with others)."""


# JSON-decoded findings hold plain dicts, lists and strs: exact type checks (not the ABCs,
# whose isinstance costs more than the rest of the digest) are all a hostile value needs.
_EMPTY: dict[str, Any] = {}


def _obj(value: Any) -> dict[str, Any]:
    return value if type(value) is dict else _EMPTY


def _objs(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if type(v) is dict] if type(value) is list else []


def _text(value: Any) -> str:
    return value.strip() if type(value) is str else ""


def _add(out: list[str], value: Any, *, lower: bool = False) -> None:
    if type(value) is not str:
        return
    text = value.strip().lower() if lower else value.strip()
    # Bounded: a crafted finding with thousands of evidences must not make a huge digest
    # (every list is capped again per incident, Policy.max_items).
    if text and len(out) < MAX_VALUES and len(text) <= MAX_TEXT and text not in out:
        out.append(text)


def _scopes(finding: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """Where entity objects may sit: each evidence (1.8), then the finding itself (1.3)."""
    yield from _objs(finding.get("evidences"))
    yield finding


def _entities(finding: Mapping[str, Any]) -> tuple[list[str], list[str], list[str], str, str]:
    own: list[str] = []  # the device's own names come first: the key is taken from them
    hosts: list[str] = []
    ips: list[str] = []
    users: list[str] = []
    src = dst = ""
    for scope in _scopes(finding):
        if (device := scope.get("device")) is not None:
            device = _obj(device)
            _add(own, device.get("hostname") or device.get("name"), lower=True)
            _add(ips, device.get("ip"))
        if (endpoint := scope.get("src_endpoint")) is not None:
            endpoint = _obj(endpoint)
            _add(ips, endpoint.get("ip"))
            _add(hosts, endpoint.get("hostname"), lower=True)
            src = src or _text(endpoint.get("ip"))
        if (endpoint := scope.get("dst_endpoint")) is not None:
            endpoint = _obj(endpoint)
            _add(ips, endpoint.get("ip"))
            _add(hosts, endpoint.get("hostname"), lower=True)
            dst = dst or _text(endpoint.get("ip"))
        if (process := scope.get("process")) is not None:
            _add(users, _obj(_obj(process).get("user")).get("name"))
        if (user := scope.get("user")) is not None:
            _add(users, _obj(user).get("name"))
        if (actor := scope.get("actor")) is not None:
            _add(users, _obj(_obj(actor).get("user")).get("name"))
        if (data := scope.get("data")) is not None:  # the scored event itself
            data = _obj(data)
            _add(own, data.get("host"), lower=True)
            _add(users, data.get("user"))
            _add(ips, data.get("src_ip"))
            _add(ips, data.get("dst_ip"))
            src = src or _text(data.get("src_ip"))
            dst = dst or _text(data.get("dst_ip"))
    return own + [h for h in hosts if h not in own], ips, users, src, dst


def _attacks(finding: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    info = _obj(finding.get("finding_info"))
    tactics: list[str] = []
    techniques: list[str] = []
    for attack in _objs(info.get("attacks")) + _objs(finding.get("attacks")):
        tactic = _obj(attack.get("tactic"))
        _add(tactics, tactic.get("uid") or _TACTIC_BY_NAME.get(_text(tactic.get("name")).lower()))
        for tech in (attack.get("technique"), attack.get("sub_technique")):
            _add(techniques, _text(_obj(tech).get("uid")).upper())
    for rule in _objs(_obj(_obj(finding.get("unmapped")).get("scorer")).get("rules")):
        listed = rule.get("techniques")
        for tech in listed if isinstance(listed, list) else ():  # a hostile finding may put anything here
            _add(techniques, _text(tech).upper())
    return tactics, techniques


def _own_address(finding: Mapping[str, Any]) -> str:
    """The address the finding's host itself has, where the event says so unambiguously.

    OCSF's ``device.ip`` is the device's own. Of the scored event: a Sysmon network
    connection (event 3) names the local end by ``Initiated`` (outbound: the source); a
    SIEM alert with a single address that is not a remote peer's (AIT-ADS' ``ip`` column,
    a Wazuh agent's address) is the host's. Logon events' ``IpAddress`` (4624/4625), a
    Wazuh ``srcip`` or a Suricata flow name the *other* end: linking those would put an
    attacker's address on its victim and every flow of the attacker in the victim's incident.
    """
    for scope in _scopes(finding):
        own = _text(_obj(scope.get("device")).get("ip"))
        if own:
            return own
        data = _obj(scope.get("data"))
        fields = _obj(data.get("fields"))
        if data.get("event_code") == 3:
            initiated = _text(fields.get("Initiated")).lower()
            if initiated in ("true", "false"):
                return _text(data.get("src_ip" if initiated == "true" else "dst_ip"))
        elif "rule_name" in data and not data.get("dst_ip") and "srcip" not in fields:
            return _text(data.get("src_ip"))
    return ""


def _kind(finding: Mapping[str, Any], topic: str) -> str:
    scorer = _obj(_obj(finding.get("unmapped")).get("scorer"))
    kind = _text(scorer.get("kind"))
    if kind in _KINDS:
        return kind
    types = _obj(finding.get("finding_info")).get("types")
    if isinstance(types, list) and types and types[0] in _KINDS:
        return str(types[0])
    suffix = topic.rsplit(".", 1)[-1]
    return suffix if suffix in _KINDS else "unknown"


def digest(finding: Mapping[str, Any], *, topic: str = "", partition: int = -1, offset: int = -1) -> Member:
    """The :class:`Member` of one Detection Finding (either layout).

    Raises :class:`Unattributed` when it has no uid, no time or no entity.
    """
    info = _obj(finding.get("finding_info"))
    uid = _text(info.get("uid")) or _text(_obj(finding.get("metadata")).get("uid"))
    if not uid or len(uid) > 2 * MAX_TEXT:
        raise Unattributed("finding has no usable uid (finding_info.uid / metadata.uid)")
    time_ms = info.get("first_seen_time", finding.get("time"))
    if type(time_ms) is not int or not 0 <= time_ms < 2**63:
        raise Unattributed(f"finding {uid} has no usable time (finding_info.first_seen_time / time, epoch ms)")
    hosts, ips, users, src, dst = _entities(finding)
    if not (hosts or ips or users):
        raise Unattributed(f"finding {uid} names no host, IP or user")
    # The flow's source first: the key falls back to it (links.correlation_key).
    ips = [ip for ip in (src, dst) if ip] + [ip for ip in ips if ip not in (src, dst)]
    tactics, techniques = _attacks(finding)
    rules: list[str] = []
    for analytic in _objs(info.get("related_analytics")):
        if analytic.get("type_id") == 1:
            _add(rules, analytic.get("uid"))
    severity = finding.get("severity_id")
    return Member(
        uid=uid, kind=_kind(finding, topic), time_ms=time_ms,
        severity_id=severity if type(severity) is int and 0 <= severity <= 6 else 0,
        title=_text(info.get("title"))[:200], model=_text(_obj(info.get("analytic")).get("name"))[:MAX_TEXT],
        rules=tuple(rules), tactics=tuple(tactics), techniques=tuple(techniques),
        hosts=tuple(hosts), ips=tuple(ips), users=tuple(users), own_ip=_own_address(finding)[:MAX_TEXT],
        topic=topic, partition=partition, offset=offset,
    )
