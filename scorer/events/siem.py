"""SIEM adapters: AIT-ADS alert CSV rows, Wazuh alerts.json, Suricata eve.json alerts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from scorer.errors import RecordError
from scorer.events.convert import bounded, opt_int, req_text, text_fields, to_text, to_timestamp
from scorer.events.structs import SiemAlert

_SYSTEM_OF_PREFIX = {"W": "wazuh", "S": "suricata", "A": "aminer"}


def from_ait(row: Mapping[str, Any], *, source: str = "ait-ads") -> SiemAlert:
    """An AIT-ADS row: time,name,ip,host,short,time_label,event_label."""
    name = req_text(row.get("name"), "name")
    short = to_text(row.get("short"), "short")
    system, _, _ = name.partition(":")
    if short and short[:1] in _SYSTEM_OF_PREFIX:
        system = _SYSTEM_OF_PREFIX[short[:1]]
    # event_label and time_label are the dataset's ground truth (the attack step, and the
    # phase window it fell in): only ``label`` keeps the first, which the finding leaves out,
    # so neither reaches an alert an analyst or a model downstream reads.
    event_label = to_text(row.get("event_label"), "event_label")
    label = None
    if "event_label" in row:
        label = "benign" if event_label is None else event_label
    return SiemAlert(
        uid=to_text(row.get("uid"), "uid") or "",
        ts=to_timestamp(row.get("time"), "time"),
        rule_name=name,
        source_system=system.strip().lower() or "unknown",
        rule_id=short,
        host=to_text(row.get("host"), "host"),
        src_ip=to_text(row.get("ip"), "ip"),
        source=source,
        label=label,
    )


def from_wazuh(raw: Mapping[str, Any]) -> SiemAlert:
    rule = _obj(raw, "rule")
    agent = _obj(raw, "agent")
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    assert isinstance(data, dict)
    return SiemAlert(
        uid=to_text(raw.get("id"), "id") or "",
        ts=to_timestamp(raw.get("timestamp"), "timestamp"),
        rule_name=req_text(rule.get("description"), "rule.description"),
        source_system="wazuh",
        rule_id=to_text(rule.get("id"), "rule.id"),
        host=to_text(agent.get("name"), "agent.name"),
        src_ip=to_text(data.get("srcip"), "data.srcip") or to_text(agent.get("ip"), "agent.ip"),
        dst_ip=to_text(data.get("dstip"), "data.dstip"),
        severity=opt_int(rule.get("level"), "rule.level"),
        fields=text_fields(data, frozenset()),
        source="wazuh",
    )


def from_suricata(raw: Mapping[str, Any]) -> SiemAlert:
    alert = _obj(raw, "alert")
    return SiemAlert(
        uid=to_text(raw.get("flow_id"), "flow_id") or "",
        ts=to_timestamp(raw.get("timestamp"), "timestamp"),
        rule_name=req_text(alert.get("signature"), "alert.signature"),
        source_system="suricata",
        rule_id=to_text(alert.get("signature_id"), "alert.signature_id"),
        host=to_text(raw.get("host"), "host"),
        src_ip=to_text(raw.get("src_ip"), "src_ip"),
        dst_ip=to_text(raw.get("dest_ip"), "dest_ip"),
        severity=opt_int(alert.get("severity"), "alert.severity"),
        fields=text_fields(alert, frozenset({"signature", "signature_id", "severity"})),
        source="suricata",
    )


def from_mapping(raw: Mapping[str, Any]) -> SiemAlert:
    """Any JSON form a producer may send: canonical, AIT-ADS row, Wazuh or Suricata alert."""
    if "rule_name" in raw:
        try:
            alert = msgspec.convert(dict(raw), SiemAlert, strict=False)
        except msgspec.ValidationError as exc:
            raise RecordError("wrong_type", f"siem alert: {exc}") from None
        return bounded(alert, ("severity",))
    if "short" in raw or ("name" in raw and "time" in raw):
        return from_ait(raw)
    if isinstance(raw.get("rule"), dict):
        return from_wazuh(raw)
    if isinstance(raw.get("alert"), dict):
        return from_suricata(raw)
    raise RecordError("unknown_schema", "not a SIEM alert: no rule_name, name, rule or alert field")


def _obj(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise RecordError("missing_field", f"required object {key!r} is missing")
    return value
