"""OCSF 1.8.0 Incident Finding (class 2005) for one incident record.

- The incident's uid is ``metadata.correlation_uid`` (and the Kafka key); each record has
  its own ``metadata.uid`` (``<incident uid>:<revision>``) and ``metadata.sequence``, so a
  reader keeps the latest revision per incident and sees a repeated record as such.
- ``finding_info_list``: the bounded sample of member findings (the first and the latest,
  their uids are the Detection Findings' ``finding_info.uid``); ``count`` is how many
  joined in all, ``unmapped.incident`` the rest of what correlation knows (kinds, hosts,
  addresses, users, rules, why it closed).
- Severity: the highest of its findings, raised one step for each kind of breadth (more
  than one finding kind, more than one ATT&CK tactic, more than one host), up to Critical;
  priority follows from it. ``attacks`` lists every tactic and technique seen.
- Profiles declared in ``metadata.profiles``: ``incident`` (the class implies it; its
  ``assignee_group`` satisfies the class's at-least-one constraint), ``security_control``
  (``attacks``), ``host`` (``device``, when the key is a host).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from scorer import __version__
from scorer.alerts.attack import TACTIC_IDS, tactic_title
from scorer.alerts.textsafe import escape_json, visible

from .links import HOST
from .model import Activity, IncidentState

OCSF_VERSION = "1.8.0"
CLASS_UID = 2005
CATEGORY_UID = 2
SEVERITIES = {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
PRIORITIES = {0: "Unknown", 1: "Low", 2: "Medium", 3: "High", 4: "Critical"}
_TACTIC_NAMES = {uid: tactic_title(name) for name, uid in TACTIC_IDS.items()}
_ACTIVITY = {Activity.CREATE: "Create", Activity.UPDATE: "Update", Activity.CLOSE: "Close"}
_OBSERVABLE_TYPES = {"host": (1, "Hostname"), "ip": (2, "IP Address"), "user": (4, "User Name")}


def breadth(state: IncidentState) -> int:
    """How many kinds of breadth the incident shows (0-3)."""
    return (len(state.kinds) > 1) + (len(state.tactics) > 1) + (len(state.hosts) > 1)


def severity_of(state: IncidentState) -> int:
    if state.severity_id == 0:
        return 0
    return min(5, max(1, state.severity_id) + breadth(state))


def priority_of(severity_id: int) -> int:
    """Informational and Low -> Low, Medium -> Medium, High -> High, Critical -> Critical."""
    return {0: 0, 1: 1, 2: 1, 3: 2, 4: 3}.get(severity_id, 4)


def _title(state: IncidentState) -> str:
    kinds = "+".join(sorted(state.kinds))
    return f"{kinds} incident on {state.key} ({state.count} finding{'s' * (state.count != 1)})"


def _describe(state: IncidentState) -> str:
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(state.kinds.items()))
    tactics = ", ".join(_TACTIC_NAMES.get(t, t) for t in state.tactics) or "none"
    return (f"{state.count} finding{'s' * (state.count != 1)} ({kinds}); tactics: {tactics}; "
            f"hosts: {', '.join(state.hosts) or 'none'}")


def incident_finding(activity: Activity, state: IncidentState, *, now_ms: int | None = None,
                     assignee_group: str = "SOC") -> dict[str, Any]:
    """The Incident Finding for ``state`` as ``activity`` left it (JSON-ready)."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    severity = severity_of(state)
    priority = priority_of(severity)
    closed = activity is Activity.CLOSE
    profiles = ["incident", "security_control"]
    event: dict[str, Any] = {
        "activity_id": int(activity), "activity_name": _ACTIVITY[activity],
        "category_uid": CATEGORY_UID, "category_name": "Findings",
        "class_uid": CLASS_UID, "class_name": "Incident Finding",
        "type_uid": CLASS_UID * 100 + int(activity), "type_name": f"Incident Finding: {_ACTIVITY[activity]}",
        "severity_id": severity, "severity": SEVERITIES[severity],
        "priority_id": priority, "priority": PRIORITIES[priority],
        "status_id": 5 if closed else 1, "status": "Closed" if closed else "New",
        "time": now_ms, "start_time": state.first_ms, "end_time": state.last_ms,
        "duration": state.last_ms - state.first_ms, "count": state.count,
        "message": visible(_title(state)),
        "desc": visible(_describe(state)),
        "assignee_group": {"name": assignee_group},
        "is_alert": True,
        "finding_info_list": [
            {"uid": e.uid, "title": e.title or f"{e.kind} finding", "types": [e.kind],
             "first_seen_time": e.time_ms, "last_seen_time": e.time_ms}
            for e in state.sample()
        ],
        "observables": _observables(state),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": f"{state.uid}:{state.revision}",
            "correlation_uid": state.uid,
            "sequence": state.revision,
            "log_name": "incidents",
            "processed_time": now_ms,
            "product": {"name": "scorer", "vendor_name": "scorer", "version": __version__,
                        "feature": {"name": "incidents"}},
            "profiles": profiles,
        },
        "unmapped": {"incident": {
            "uid": state.uid, "key": state.key, "kinds": dict(state.kinds), "member_count": state.count,
            "sample_size": len(state.sample()), "hosts": list(state.hosts), "ips": list(state.ips),
            "users": list(state.users), "rules": list(state.rules), "max_finding_severity_id": state.severity_id,
            "breadth": breadth(state), "closed_reason": state.closed or None,
        }},
    }
    if closed:
        event["status_detail"] = state.closed
    attacks = [{"tactic": {"uid": t, "name": _TACTIC_NAMES.get(t, t)}, "version": "ATT&CK"} for t in state.tactics]
    attacks += [{"technique": {"uid": t}, "version": "ATT&CK"} for t in state.techniques]
    if attacks:
        event["attacks"] = attacks
    if state.key.startswith(HOST):
        profiles.append("host")
        event["device"] = {"hostname": state.key[len(HOST):], "name": state.key[len(HOST):], "type_id": 0,
                           "type": "Unknown"}
    return event


def _observables(state: IncidentState) -> list[dict[str, Any]]:
    out = []
    for kind, values in (("host", state.hosts), ("ip", state.ips), ("user", state.users)):
        type_id, type_name = _OBSERVABLE_TYPES[kind]
        out += [{"name": kind, "type_id": type_id, "type": type_name, "value": v} for v in values]
    return out


_ENCODER = msgspec.json.Encoder()


def encode(event: dict[str, Any]) -> bytes:
    """The record as JSON with no raw control character in its bytes."""
    return escape_json(_ENCODER.encode(event))


