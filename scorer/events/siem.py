"""SIEM adapters: AIT-ADS alert CSV rows, Wazuh alerts.json, Suricata eve.json alerts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

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


class _Form(NamedTuple):
    """Where one JSON alert form keeps each canonical field (dotted paths, checked in this order)."""

    system: str
    objects: tuple[str, ...]  # objects the form must have (a ``missing_field`` first)
    uid: str
    ts: str
    rule_name: str
    rule_id: str
    host: str
    src_ip: tuple[str, ...]  # the first present wins
    dst_ip: str
    severity: str
    fields: str  # the object whose leftover scalars are kept as ``fields``
    consumed: frozenset[str] = frozenset()  # of that object: already mapped above


WAZUH = _Form("wazuh", ("rule", "agent"), uid="id", ts="timestamp", rule_name="rule.description",
              rule_id="rule.id", host="agent.name", src_ip=("data.srcip", "agent.ip"), dst_ip="data.dstip",
              severity="rule.level", fields="data")
SURICATA = _Form("suricata", ("alert",), uid="flow_id", ts="timestamp", rule_name="alert.signature",
                 rule_id="alert.signature_id", host="host", src_ip=("src_ip",), dst_ip="dest_ip",
                 severity="alert.severity", fields="alert",
                 consumed=frozenset({"signature", "signature_id", "severity"}))


def from_wazuh(raw: Mapping[str, Any]) -> SiemAlert:
    return _from_form(raw, WAZUH)


def from_suricata(raw: Mapping[str, Any]) -> SiemAlert:
    return _from_form(raw, SURICATA)


def _from_form(raw: Mapping[str, Any], form: _Form) -> SiemAlert:
    for key in form.objects:
        _obj(raw, key)

    def at(path: str) -> Any:
        node: Any = raw
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    fields = at(form.fields)
    return SiemAlert(
        uid=to_text(at(form.uid), form.uid) or "",
        ts=to_timestamp(at(form.ts), form.ts),
        rule_name=req_text(at(form.rule_name), form.rule_name),
        source_system=form.system,
        rule_id=to_text(at(form.rule_id), form.rule_id),
        host=to_text(at(form.host), form.host),
        src_ip=next((ip for path in form.src_ip if (ip := to_text(at(path), path))), None),
        dst_ip=to_text(at(form.dst_ip), form.dst_ip),
        severity=opt_int(at(form.severity), form.severity),
        fields=text_fields(fields if isinstance(fields, dict) else {}, form.consumed),
        source=form.system,
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
