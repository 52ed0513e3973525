"""Netflow adapters: Zeek conn.log (TSV or JSON), CICFlowMeter CSV rows, canonical JSON."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from scorer.errors import RecordError
from scorer.events.convert import by_form, is_missing, req_text, to_float, to_int, to_text, to_timestamp
from scorer.events.structs import FlowRecord

_PROTO_NUMBERS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmp6", "0": "other"}

# CICFlowMeter columns copied into FlowRecord.extra (everything numeric but the 5-tuple).
_CIC_IDENTITY = {
    "id", "Flow ID", "Src IP", "Src Port", "Dst IP", "Dst Port", "Protocol", "Timestamp",
    "Label", "Attempted Category",
}


# Canonical field -> where Zeek conn.log keeps it; the canonical form uses its own names.
_ZEEK_NAMES = {
    "uid": "uid", "ts": "ts", "src_ip": "id.orig_h", "src_port": "id.orig_p", "dst_ip": "id.resp_h",
    "dst_port": "id.resp_p", "proto": "proto", "service": "service", "duration": "duration",
    "src_bytes": "orig_bytes", "dst_bytes": "resp_bytes", "src_pkts": "orig_pkts", "dst_pkts": "resp_pkts",
    "conn_state": "conn_state", "history": "history",
}
_CANONICAL_NAMES = {name: name for name in _ZEEK_NAMES}


def _flow(raw: Mapping[str, Any], names: Mapping[str, str], **rest: Any) -> FlowRecord:
    """One FlowRecord from ``raw`` read through ``names``, with the same checks for every form."""
    def count(field: str) -> int:
        return to_int(raw.get(names[field]), names[field], default=0)

    def text(field: str) -> str | None:
        return to_text(raw.get(names[field]), names[field])

    return FlowRecord(
        uid=text("uid") or "",
        ts=to_timestamp(raw.get(names["ts"]), names["ts"]),
        src_ip=req_text(raw.get(names["src_ip"]), names["src_ip"]),
        dst_ip=req_text(raw.get(names["dst_ip"]), names["dst_ip"]),
        proto=(text("proto") or "tcp").lower(),
        duration=to_float(raw.get(names["duration"]), names["duration"], default=0.0),
        src_port=count("src_port"), dst_port=count("dst_port"),
        src_bytes=count("src_bytes"), dst_bytes=count("dst_bytes"),
        src_pkts=count("src_pkts"), dst_pkts=count("dst_pkts"),
        service=text("service"), conn_state=text("conn_state"), history=text("history"),
        **rest,
    )


def from_zeek(row: Mapping[str, Any], *, source: str = "zeek") -> FlowRecord:
    """A Zeek conn.log row, as parsed from TSV (all strings) or from Zeek's JSON writer."""
    label = to_text(row.get("label"), "label")
    detailed = to_text(row.get("detailedlabel"), "detailedlabel")
    if label and detailed:
        label = f"{label}:{detailed}"
    return _flow(row, _ZEEK_NAMES, source=source, label=label)


def from_cicflowmeter(row: Mapping[str, Any], *, source: str = "cicflowmeter") -> FlowRecord:
    """A CICFlowMeter CSV row (CIC-IDS2017 column names). Duration is in microseconds."""
    proto_raw = str(row.get("Protocol", "6")).strip()
    extra: dict[str, float] = {}
    for key, value in row.items():
        if key in _CIC_IDENTITY or is_missing(value):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        # Infinite rates (zero-duration flows) are a CICFlowMeter artefact, not bad input.
        extra[key] = number if number == number and abs(number) != float("inf") else 0.0
    fwd_pkts = to_int(row.get("Total Fwd Packet", row.get("Total Fwd Packets")), "Total Fwd Packet", default=0)
    bwd_pkts = to_int(row.get("Total Bwd packets", row.get("Total Backward Packets")), "Total Bwd packets", default=0)
    return FlowRecord(
        uid=to_text(row.get("id"), "id") or to_text(row.get("Flow ID"), "Flow ID") or "",
        ts=to_timestamp(row.get("Timestamp"), "Timestamp"),
        src_ip=req_text(row.get("Src IP"), "Src IP"),
        src_port=to_int(row.get("Src Port"), "Src Port", default=0),
        dst_ip=req_text(row.get("Dst IP"), "Dst IP"),
        dst_port=to_int(row.get("Dst Port"), "Dst Port", default=0),
        proto=_PROTO_NUMBERS.get(proto_raw, proto_raw.lower()),
        duration=to_float(row.get("Flow Duration"), "Flow Duration", default=0.0) / 1e6,
        src_bytes=to_int(row.get("Total Length of Fwd Packet"), "Total Length of Fwd Packet", default=0),
        dst_bytes=to_int(row.get("Total Length of Bwd Packet"), "Total Length of Bwd Packet", default=0),
        src_pkts=fwd_pkts,
        dst_pkts=bwd_pkts,
        extra=extra,
        source=source,
        label=to_text(row.get("Label"), "Label"),
    )


def from_mapping(raw: Mapping[str, Any]) -> FlowRecord:
    """Any JSON form a producer may send: canonical FlowRecord, Zeek JSON, or a CIC row."""
    forms: dict[str, Callable[[Mapping[str, Any]], FlowRecord]] = {
        "src_ip": _canonical, "id.orig_h": from_zeek, "Src IP": from_cicflowmeter}
    return by_form(raw, forms, "not a flow record: no src_ip, id.orig_h or 'Src IP' field")


def _canonical(raw: Mapping[str, Any]) -> FlowRecord:
    extra_raw = raw.get("extra") or {}
    if not isinstance(extra_raw, dict):
        raise RecordError("wrong_type", "field 'extra' must be an object")
    return _flow(
        raw, _CANONICAL_NAMES,
        extra={str(k): to_float(v, f"extra.{k}") for k, v in list(extra_raw.items())[:128]},
        source=to_text(raw.get("source"), "source"),
        label=to_text(raw.get("label"), "label"),
    )


__all__ = ["from_cicflowmeter", "from_mapping", "from_zeek"]
