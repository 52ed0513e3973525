"""EDR adapters: Windows events as OTRF flat JSON lines or as Event-XML-as-JSON.

Both forms carry the same EventData names (Sysmon: Image, CommandLine, ParentImage...;
Security: NewProcessName, ParentProcessName, IpAddress...); they are mapped onto one
:class:`EndpointEvent` so features never see which form arrived.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scorer.errors import RecordError
from scorer.events.convert import (
    MISSING_TEXTS,
    bounded,
    by_form,
    is_missing,
    opt_int,
    req_text,
    to_int,
    to_text,
    to_timestamp,
)
from scorer.events.structs import EndpointEvent

# Canonical field -> EventData names that carry it, first present wins.
_ALIASES: dict[str, tuple[str, ...]] = {
    "image": ("Image", "NewProcessName", "ProcessName", "Application"),
    "command_line": ("CommandLine", "ProcessCommandLine"),
    "parent_image": ("ParentImage", "ParentProcessName"),
    "parent_command_line": ("ParentCommandLine",),
    "target_filename": ("TargetFilename", "ObjectName", "FileName"),
    "target_object": ("TargetObject",),
    "image_loaded": ("ImageLoaded",),
    "src_ip": ("SourceIp", "IpAddress", "SourceAddress"),
    "dst_ip": ("DestinationIp", "DestAddress"),
    "integrity_level": ("IntegrityLevel", "MandatoryLabel"),
}
_USER_FIELDS = ("User", "TargetUserName", "SubjectUserName", "AccountName", "UserName")
# TimeGenerated: Microsoft Sentinel / Log Analytics exports (SecurityEvent, WindowsEvent tables).
_TIME_FIELDS = ("UtcTime", "@timestamp", "TimeCreated", "EventTime", "TimeGenerated", "ts")
# Always consumed. Of the alias names above, only the one each canonical field was taken from
# is consumed: the others stay in ``fields`` (an event with both TargetUserName and
# SubjectUserName keeps both; detection rules name either). The user aliases other than
# ``User`` are never consumed: Target and Subject are different accounts, and a rule naming
# one must not see the other (scorer.rules reads them from ``fields``).
_CONSUMED = frozenset(
    set(_TIME_FIELDS)
    | {"Hostname", "Computer", "host", "EventID", "Channel", "SourceName", "ProcessId",
       "DestinationPort", "LogonType", "Signed", "Message", "uid", "label", "tags", "EventSourceName"}
)
# Values kept in ``fields``: bounded per field and in number, but long enough for what
# detection rules match on (PowerShell ScriptBlockText, service paths, payloads).
FIELD_TEXT_LIMIT = 8192
FIELD_COUNT_LIMIT = 128


def from_otrf(raw: Mapping[str, Any], *, source: str = "otrf") -> EndpointEvent:
    """A flat OTRF/Mordor JSON line (NXLog/Winlogbeat export)."""
    return _build(raw, raw, source=source)


def from_event_xml(raw: Mapping[str, Any], *, source: str = "evtx") -> EndpointEvent:
    """An ``{"Event": {"System": ..., "EventData": ...}}`` record (Event XML rendered as JSON)."""
    event = raw.get("Event")
    if not isinstance(event, dict):
        raise RecordError("unknown_schema", "Event-XML record has no 'Event' object")
    system = event.get("System")
    if not isinstance(system, dict):
        raise RecordError("missing_field", "Event-XML record has no 'System' object")
    data = _event_data(event.get("EventData") if "EventData" in event else _user_data(event.get("UserData")))
    provider = system.get("Provider")
    created = system.get("TimeCreated")
    header: dict[str, Any] = {
        "Computer": system.get("Computer"),
        "EventID": _attr_text(system.get("EventID")),
        "Channel": system.get("Channel"),
        "SourceName": _attr(provider, "Name"),
        "TimeCreated": _attr(created, "SystemTime"),
    }
    header.update({k: v for k, v in data.items() if k not in header})
    # A producer's uid/label beside the "Event" object: event identity survives this form too.
    header.update({k: raw[k] for k in ("uid", "label") if raw.get(k) is not None})
    return _build(header, data, source=source)


def from_mapping(raw: Mapping[str, Any]) -> EndpointEvent:
    """Any JSON form a producer may send: canonical, OTRF flat, or Event XML as JSON."""
    return by_form(raw, {"Event": from_event_xml, "event_code": _canonical, "EventID": from_otrf},
                   "not an endpoint event: no EventID, Event or event_code")


def _build(header: Mapping[str, Any], data: Mapping[str, Any], *, source: str) -> EndpointEvent:
    chosen: list[str] = []

    def first(names: tuple[str, ...], field: str) -> str | None:
        for name in names:
            value = data.get(name)
            if value is not None and not is_missing(value):
                if name != "User" and field == "user":
                    return to_text(value, name)  # stays in fields too (see _CONSUMED)
                chosen.append(name)
                return to_text(value, name)
        return None

    ts_value = next((header[n] for n in _TIME_FIELDS if not is_missing(header.get(n))), None)
    signed = data.get("Signed")
    host = header.get("Hostname", header.get("Computer", header.get("host")))
    return EndpointEvent(
        uid=to_text(header.get("uid"), "uid") or "",
        ts=to_timestamp(ts_value, "UtcTime"),
        host=req_text(host, "Hostname"),
        channel=to_text(header.get("Channel"), "Channel") or "",
        provider=to_text(header.get("SourceName", header.get("EventSourceName")), "SourceName") or "",
        event_code=to_int(header.get("EventID"), "EventID"),
        user=first(_USER_FIELDS, "user"),
        image=first(_ALIASES["image"], "image"),
        command_line=first(_ALIASES["command_line"], "command_line"),
        parent_image=first(_ALIASES["parent_image"], "parent_image"),
        parent_command_line=first(_ALIASES["parent_command_line"], "parent_command_line"),
        process_id=_pid(data.get("ProcessId")),
        target_filename=first(_ALIASES["target_filename"], "target_filename"),
        target_object=first(_ALIASES["target_object"], "target_object"),
        image_loaded=first(_ALIASES["image_loaded"], "image_loaded"),
        src_ip=first(_ALIASES["src_ip"], "src_ip"),
        dst_ip=first(_ALIASES["dst_ip"], "dst_ip"),
        dst_port=opt_int(data.get("DestinationPort"), "DestinationPort"),
        logon_type=opt_int(data.get("LogonType"), "LogonType"),
        integrity_level=first(_ALIASES["integrity_level"], "integrity_level"),
        signed=None if is_missing(signed) else str(signed).lower() == "true",
        fields=_fields(data, chosen, header),
        source=source,
        label=to_text(header.get("label"), "label"),
    )


def _fields(data: Mapping[str, Any], chosen: list[str], header: Mapping[str, Any]) -> dict[str, str]:
    """The leftover EventData (not in ``_CONSUMED``, not a ``chosen`` alias) as bounded text:
    :func:`text_fields` with the limits above, written for speed (it runs for every event)."""
    out: dict[str, str] = {}
    message = data.get("Message")
    if header.get("Channel") == "Windows PowerShell" and "Data" not in data and isinstance(message, str):
        # Classic PowerShell events exported flat (NXLog, OTRF) carry their payload only in
        # Message: kept as "Data", the field Sigma's rules for these events read.
        out["Data"] = message[:FIELD_TEXT_LIMIT]
    consumed, missing = _CONSUMED, MISSING_TEXTS
    for key, value in data.items():
        if key in consumed or key in chosen:
            continue
        if type(value) is str:
            if value in missing:
                continue
            text = value if len(value) <= FIELD_TEXT_LIMIT else value[:FIELD_TEXT_LIMIT]
        elif value is None or isinstance(value, dict | list):
            continue
        else:
            text = str(value)[:FIELD_TEXT_LIMIT]
        if len(out) >= FIELD_COUNT_LIMIT:
            break
        name = key if type(key) is str else str(key)
        if " " in name:
            # Defender and some other providers name fields with spaces ("Threat Name"); Sigma
            # rules and SIEMs name them without ("ThreatName").
            name = name.replace(" ", "")
        out[name[:128]] = text
    return out


def _pid(value: Any) -> int | None:
    # Security events write process ids in hex ("0x1a2b").
    if isinstance(value, str) and value.lower().startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            return None
    try:
        return opt_int(value, "ProcessId")
    except RecordError:
        return None


def _event_data(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict) and "Data" in value and isinstance(value["Data"], list):
        # <Data Name="X">v</Data> rendered as a list of {"#attributes": {"Name"}, "#text"}.
        out = {
            str(_attr(item, "Name")): item.get("#text")
            for item in value["Data"]
            if isinstance(item, dict) and _attr(item, "Name")
        }
        # Unnamed <Data> items (classic "Windows PowerShell" 400/600/800): one "Data" text, as
        # Sigma's rules for those events read it.
        unnamed = [str(item.get("#text") if isinstance(item, dict) else item) for item in value["Data"]
                   if not (isinstance(item, dict) and _attr(item, "Name")) and item is not None]
        if unnamed and "Data" not in out:
            out["Data"] = "\n".join(unnamed)
        return out
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "#attributes"}
    raise RecordError("wrong_type", "EventData must be an object")


def _user_data(value: Any) -> Any:
    """``<UserData><Element xmlns=...><Field>v</Field>...</Element></UserData>``: the element's
    fields (WMI-Activity, some TaskScheduler and AppLocker events carry UserData, not EventData)."""
    if isinstance(value, dict):
        children = [v for k, v in value.items() if k != "#attributes" and isinstance(v, dict)]
        if len(children) == 1:
            return children[0]
    return None


def _attr(node: Any, name: str) -> Any:
    if isinstance(node, dict):
        attrs = node.get("#attributes")
        if isinstance(attrs, dict):
            return attrs.get(name)
    return None


def _attr_text(node: Any) -> Any:
    return node.get("#text") if isinstance(node, dict) else node


_INT_FIELDS = ("event_code", "process_id", "dst_port", "logon_type")


def _canonical(raw: Mapping[str, Any]) -> EndpointEvent:
    import msgspec

    try:
        event = msgspec.convert(dict(raw), EndpointEvent, strict=False)
    except msgspec.ValidationError as exc:
        raise RecordError("wrong_type", f"endpoint event: {exc}") from None
    if event.rule_hits:  # the rules stage's to set, never the producer's
        event = msgspec.structs.replace(event, rule_hits=())
    return bounded(event, _INT_FIELDS)
