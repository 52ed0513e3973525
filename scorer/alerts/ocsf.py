"""OCSF Detection Finding (class 2004) for one scored event.

Reference: OCSF 1.3 ``detection_finding`` (category 2 Findings). The source event is
linked by uid in ``finding_info.related_events`` and carried whole in ``evidences[0].data``
so a SOC never has to go back to the input topic to see what was scored.
Strings reach the JSON encoder as they are, so the evidence stays exact; :func:`encode`
escapes what msgspec leaves raw (DEL, the C1 controls such as the 8-bit CSI, and U+2028/
U+2029), so no raw control character reaches a downstream reader and a crafted field
cannot break the JSON or inject lines. The display text (``finding_info.desc``) has its
control characters made visible (``\x1b``), so it is safe even after decoding.
"""

from __future__ import annotations

import re
import time
from typing import Any

import msgspec

from scorer import __version__
from scorer.alerts.decide import SEVERITY_IDS, Decision
from scorer.events.structs import EndpointEvent, Event, FlowRecord, SiemAlert, SourceRef

OCSF_VERSION = "1.3.0"
CLASS_UID = 2004
CATEGORY_UID = 2
ACTIVITY_CREATE = 1
ANALYTIC_LEARNING = 4  # OCSF analytic type_id 4: "Learning (ML/DL)"

_TITLES = {
    "netflow": "Suspicious network flow",
    "edr": "Suspicious endpoint activity",
    "siem": "Alert likely part of an attack",
}



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
) -> dict[str, Any]:
    """The OCSF Detection Finding for ``event``, as a JSON-ready dict."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    event_ms = int(event.ts * 1000)
    alert_uid = f"{model_name}:{model_version}:{event.uid}"
    finding: dict[str, Any] = {
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Detection Finding: Create",
        "severity_id": SEVERITY_IDS.get(decision.severity, 0),
        "severity": decision.severity,
        "status_id": 1,
        "status": "New",
        "time": now_ms,
        "confidence_score": round(decision.score * 100),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": alert_uid,
            "product": {"name": "scorer", "vendor_name": "scorer", "version": __version__},
            "original_time": str(event.ts),
            "log_name": ref.topic,
            "processed_time": now_ms,
        },
        "finding_info": {
            "uid": alert_uid,
            "title": _TITLES.get(kind, "Suspicious event"),
            "desc": _describe(kind, event, decision),
            "types": [kind],
            "first_seen_time": event_ms,
            "last_seen_time": event_ms,
            "analytic": {
                "name": model_name,
                "uid": f"{model_name}:{model_version}",
                "version": model_version,
                "type_id": ANALYTIC_LEARNING,
                "type": "Learning (ML/DL)",
            },
            "related_events": [{"uid": event.uid, "type": kind}],
        },
        "evidences": [{"data": _event_data(event)}],
        "unmapped": {
            "scorer": {
                "score": round(decision.score, 6),
                "threshold": threshold,
                "backend": backend,
                "model": {"name": model_name, "version": model_version},
                "top_features": [
                    {"name": n, "value": v, "contribution": c} for n, v, c in decision.top_features
                ],
                "source": {"topic": ref.topic, "partition": ref.partition, "offset": ref.offset},
                "event_uid": event.uid,
                "kind": kind,
            }
        },
    }
    finding.update(_context(event))
    return finding


_ENCODER = msgspec.json.Encoder()
# Valid UTF-8 JSON from msgspec: these sequences can only be the characters themselves,
# inside strings, so replacing them with their \u escapes keeps the document equal.
_RAW_UNSAFE = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def encode(finding: dict[str, Any]) -> bytes:
    """The finding as JSON with no raw control character in its bytes."""
    raw = _ENCODER.encode(finding)
    # isascii() and a one-byte find are word/memchr-fast (~0.1 us per alert); the regex
    # only runs when the alert holds DEL or any non-ASCII text.
    if raw.isascii() and b"\x7f" not in raw:
        return raw
    return _RAW_UNSAFE.sub(lambda m: b"\\u%04x" % ord(m.group().decode()), raw)


def _visible(text: str) -> str:
    """Display text: control characters shown as escapes, not interpreted by a terminal."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _event_data(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(event)
    data.pop("label", None)  # ground truth is for evaluation, never for the SOC's view
    return data


def _context(event: Event) -> dict[str, Any]:
    """Entity context in OCSF objects: endpoints for flows, device/process for hosts."""
    if isinstance(event, FlowRecord):
        return {
            "src_endpoint": {"ip": event.src_ip, "port": event.src_port},
            "dst_endpoint": {"ip": event.dst_ip, "port": event.dst_port},
            "connection_info": {"protocol_name": event.proto},
        }
    if isinstance(event, EndpointEvent):
        ctx: dict[str, Any] = {"device": {"hostname": event.host}}
        if event.image or event.command_line:
            process: dict[str, Any] = {"file": {"path": event.image}, "cmd_line": event.command_line}
            if event.parent_image:
                process["parent_process"] = {"file": {"path": event.parent_image}}
            if event.user:
                process["user"] = {"name": event.user}
            ctx["process"] = process
        return ctx
    assert isinstance(event, SiemAlert)
    ctx = {"device": {"hostname": event.host}} if event.host else {}
    if event.src_ip:
        ctx["src_endpoint"] = {"ip": event.src_ip}
    if event.dst_ip:
        ctx["dst_endpoint"] = {"ip": event.dst_ip}
    return ctx


def _describe(kind: str, event: Event, decision: Decision) -> str:
    reasons = ", ".join(name for name, _, _ in decision.top_features) or "model score"
    if isinstance(event, FlowRecord):
        what = f"{event.proto} {event.src_ip}:{event.src_port} -> {event.dst_ip}:{event.dst_port}"
    elif isinstance(event, EndpointEvent):
        what = f"event {event.event_code} on {event.host}" + (f" by {event.image}" if event.image else "")
    else:
        what = f"{event.source_system} alert {event.rule_name!r}" + (f" on {event.host}" if event.host else "")
    return _visible(f"{what}; score {decision.score:.3f}; driven by {reasons}")
