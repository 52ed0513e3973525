"""Canonical event records, one small immutable struct per event kind.

These are what the scorer scores and what replay/training produce. Raw source forms
(Zeek conn.log, CICFlowMeter CSV, OTRF JSON lines, Event-XML-as-JSON, AIT-ADS CSV,
Wazuh/Suricata JSON) are mapped onto them by the adapters of each kind.

``uid`` identifies the event across the whole system (alerts link it, eval joins on it).
``label`` is ground truth carried by labelled captures; the scorer never reads it.
"""

from __future__ import annotations

import enum

import msgspec


class EventKind(enum.StrEnum):
    NETFLOW = "netflow"
    EDR = "edr"
    SIEM = "siem"


class EventBase(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What every event carries whatever its kind: its id, its time, its origin, its ground truth.

    ``source`` names the capture or sensor a record came from; ``label`` is set only by
    labelled captures. msgspec encodes these first in every kind's JSON.
    """

    uid: str = ""
    ts: float
    source: str | None = None
    label: str | None = None


class FlowRecord(EventBase, frozen=True, kw_only=True, omit_defaults=True):
    """One bidirectional network flow (Zeek conn / CICFlowMeter / IPFIX style)."""

    src_ip: str
    src_port: int = 0
    dst_ip: str
    dst_port: int = 0
    proto: str = "tcp"
    service: str | None = None
    duration: float = 0.0
    src_bytes: int = 0
    dst_bytes: int = 0
    src_pkts: int = 0
    dst_pkts: int = 0
    conn_state: str | None = None
    history: str | None = None
    # CICFlowMeter's extended statistics when the source has them (name -> value).
    extra: dict[str, float] = {}


class HostEvent(EventBase, frozen=True, kw_only=True, omit_defaults=True):
    """An event seen on or about a host (EDR, SIEM) rather than on the wire.

    The network peers are set when the source names them; ``fields`` keeps the source's
    remaining fields as text, for context, rules and later features.
    """

    src_ip: str | None = None
    dst_ip: str | None = None
    fields: dict[str, str] = {}


class EndpointEvent(HostEvent, frozen=True, kw_only=True, omit_defaults=True):
    """One Windows endpoint event (Sysmon, Security, PowerShell channels)."""

    host: str
    channel: str = ""
    provider: str = ""
    event_code: int
    user: str | None = None
    image: str | None = None
    command_line: str | None = None
    parent_image: str | None = None
    parent_command_line: str | None = None
    process_id: int | None = None
    target_filename: str | None = None
    target_object: str | None = None
    image_loaded: str | None = None
    dst_port: int | None = None
    logon_type: int | None = None
    integrity_level: str | None = None
    signed: bool | None = None
    # Ids of the detection rules (scorer.rules) that fired on this event: set by the rules
    # stage after decoding, never taken from the wire (the decoder clears it).
    rule_hits: tuple[str, ...] = ()


class SiemAlert(HostEvent, frozen=True, kw_only=True, omit_defaults=True):
    """One alert raised by an IDS/HIDS/SIEM (Wazuh, Suricata, AMiner, ...)."""

    rule_name: str
    source_system: str = "unknown"
    rule_id: str | None = None
    host: str | None = None
    severity: int | None = None


Event = FlowRecord | EndpointEvent | SiemAlert

STRUCT_OF_KIND: dict[EventKind, type[FlowRecord] | type[EndpointEvent] | type[SiemAlert]] = {
    EventKind.NETFLOW: FlowRecord,
    EventKind.EDR: EndpointEvent,
    EventKind.SIEM: SiemAlert,
}


def entity_key(event: Event) -> str:
    """The partitioning key of an event: source IP for flows, host for EDR and SIEM.

    Host names are case-insensitive (Windows, DNS): ``WS1`` and ``ws1`` are one entity, so
    they must land in one partition and share one profile.
    """
    if isinstance(event, FlowRecord):
        return event.src_ip
    if isinstance(event, EndpointEvent):
        return event.host.lower()
    return event.host.lower() if event.host else (event.src_ip or "")


class SourceRef(msgspec.Struct, frozen=True, array_like=True):
    """Where a record came from in Kafka: enough to find the original bytes again."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int = 0


class RecordFailure(msgspec.Struct, frozen=True):
    """A record that cannot be scored, with why, its original bytes and where it was.

    Every stage that gives up on a record says so with one of these (decode: the
    :class:`scorer.events.decode.DecodeFailure` subclass; rules, features and scoring:
    ``rule_error``, ``feature_error``, ``scoring_error``...); the record then goes to the
    dead-letter topic, so ``consumed = scored + dead-lettered`` holds.
    """

    reason: str
    message: str
    ref: SourceRef
    value: bytes | None
    key: bytes | None = None
    kind: str | None = None
