"""Detection Findings for the incident tests, in both OCSF layouts.

``layout="1.8"``: entities inside ``evidences[]`` (OCSF 1.8.0, where the scorer's
findings are moving); ``"1.3"``: entities at the top level (what the alert topics held
before). Both carry ``evidences[0].data``, the scored event, as the scorer writes it.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

Layout = Literal["1.3", "1.8"]
_SEQ = itertools.count()
TACTICS = {"credential_access": "TA0006", "discovery": "TA0007", "execution": "TA0002",
           "lateral_movement": "TA0008", "exfiltration": "TA0010"}


def finding(kind: str, t_s: float, *, host: str | None = None, src_ip: str | None = None,
            dst_ip: str | None = None, user: str | None = None, severity_id: int = 3,
            tactics: tuple[str, ...] = (), techniques: tuple[str, ...] = (), rule: str | None = None,
            layout: Layout = "1.8", uid: str | None = None, model: str | None = None,
            event_code: int | None = None, initiated: bool = True) -> dict[str, Any]:
    """One finding of ``kind`` at ``t_s`` (epoch seconds) about these entities. An EDR
    finding with an address is a Sysmon network connection (event 3, outbound unless
    ``initiated`` is False) unless ``event_code`` says otherwise."""
    uid = uid or f"{kind}_classifier:1:ev-{next(_SEQ)}"
    t_ms = int(t_s * 1000)
    data: dict[str, Any] = {"uid": uid.rsplit(":", 1)[-1], "ts": t_s}
    entities: dict[str, Any] = {}
    if kind == "netflow":
        data |= {"src_ip": src_ip, "dst_ip": dst_ip, "src_port": 40000, "dst_port": 443}
        entities["src_endpoint"] = {"ip": src_ip, "port": 40000}
        entities["dst_endpoint"] = {"ip": dst_ip, "port": 443}
        entities["connection_info"] = {"protocol_name": "tcp"}
    else:
        if kind == "edr":
            data["event_code"] = event_code if event_code is not None else 3 if (src_ip or dst_ip) else 1
            if data["event_code"] == 3:
                data["fields"] = {"Initiated": "true" if initiated else "false"}
        else:
            data["rule_name"] = "an alert"
        if host:
            data["host"] = host
            entities["device"] = {"hostname": host, "type_id": 0}
        if src_ip:
            data["src_ip"] = src_ip
            entities["src_endpoint"] = {"ip": src_ip}
        if dst_ip:
            data["dst_ip"] = dst_ip
            entities["dst_endpoint"] = {"ip": dst_ip}
        if user:
            data["user"] = user
            entities["process"] = {"file": {"path": "C:\\x.exe"}, "user": {"name": user}}
    info: dict[str, Any] = {
        "uid": uid, "title": f"{kind} finding {uid}", "types": [kind], "first_seen_time": t_ms,
        "last_seen_time": t_ms,
        "analytic": {"name": model or f"{kind}_classifier", "uid": f"{kind}_classifier:1", "type_id": 4},
        "related_events": [{"uid": data["uid"], "type": kind}],
    }
    if tactics:
        info["attacks"] = [{"tactic": {"name": n.replace("_", " ").title(), "uid": TACTICS[n]}, "version": "ATT&CK"}
                           for n in tactics]
    scorer: dict[str, Any] = {"kind": kind, "event_uid": data["uid"]}
    if rule:
        info["related_analytics"] = [{"name": rule, "uid": rule, "type_id": 1, "type": "Rule"}]
        scorer["rules"] = [{"id": rule, "techniques": list(techniques)}]
    out: dict[str, Any] = {
        "class_uid": 2004, "activity_id": 1, "severity_id": severity_id, "time": t_ms + 5,
        "metadata": {"version": "1.8.0" if layout == "1.8" else "1.3.0", "uid": uid},
        "finding_info": info, "unmapped": {"scorer": scorer},
    }
    if layout == "1.8":
        out["evidences"] = [{"data": {k: v for k, v in data.items() if v is not None}, **entities}]
    else:
        out["evidences"] = [{"data": {k: v for k, v in data.items() if v is not None}}]
        out |= entities
    return out
