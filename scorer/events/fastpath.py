"""Zero-copy decoding of records already in canonical form (what replay and SOC pipelines
that adopted the schema send): msgspec decodes the bytes straight into the struct.

It only ever accepts what the generic path (JSON -> dict -> adapter) would accept and
turn into the very same event; anything else (other source forms, values the adapters
normalise or refuse) returns ``None`` and takes the generic path, which also produces the
precise dead-letter reason. A test checks both paths agree.
"""

from __future__ import annotations

import math

import msgspec

from scorer.events.convert import INT_LIMIT, MAX_TEXT, MISSING_TEXTS
from scorer.events.structs import STRUCT_OF_KIND, EndpointEvent, Event, EventKind, FlowRecord, SiemAlert

_DECODERS = {kind: msgspec.json.Decoder(struct) for kind, struct in STRUCT_OF_KIND.items()}
DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)
# The flow fields the generic path bounds: texts it reads "-"/"" as unset in and caps at
# MAX_TEXT, integers it refuses beyond INT_LIMIT (scorer.events.column_checks checks the same).
FLOW_TEXTS = ("src_ip", "dst_ip", "proto", "service", "conn_state", "history", "source", "label")
FLOW_INTS = ("src_port", "dst_port", "src_bytes", "dst_bytes", "src_pkts", "dst_pkts")


def decode_canonical(kind: EventKind, value: bytes) -> Event | None:
    try:
        event: Event = _DECODERS[kind].decode(value)
    except DECODE_ERRORS:
        return None
    return accept(event)


def accept(event: Event) -> Event | None:
    """``event`` (decoded straight into its struct) if the generic path would make the very
    same event of its record; ``None`` sends the record down the generic path."""
    if not math.isfinite(event.ts):
        return None
    if isinstance(event, FlowRecord):
        return event if _flow_ok(event) else None
    if isinstance(event, EndpointEvent):
        # msgspec takes ints of any size; the generic path refuses these as out of range.
        ints = (event.event_code, event.process_id, event.dst_port, event.logon_type)
        # Rule hits are the rules stage's to set: the generic path drops any sent on the wire.
        ok = not event.rule_hits and all(v is None or abs(v) <= INT_LIMIT for v in ints)
        return event if ok else None
    if isinstance(event, SiemAlert) and event.severity is not None and abs(event.severity) > INT_LIMIT:
        return None
    return event


def _flow_ok(flow: FlowRecord) -> bool:
    # The generic path lower-cases proto, reads "-"/"" as unset, bounds text and numbers.
    # Attributes are read directly (no getattr loop): this runs for every flow.
    if not flow.proto.islower() or not math.isfinite(flow.duration):
        return False
    for text in (flow.src_ip, flow.dst_ip, flow.proto, flow.service, flow.conn_state, flow.history,
                 flow.source, flow.label):
        if text is not None and (len(text) > MAX_TEXT or text in MISSING_TEXTS):
            return False
    uid = flow.uid
    if uid and (len(uid) > MAX_TEXT or uid in MISSING_TEXTS):  # "" is the uid's own default
        return False
    if max(abs(flow.src_port), abs(flow.dst_port), abs(flow.src_bytes), abs(flow.dst_bytes),
           abs(flow.src_pkts), abs(flow.dst_pkts)) > INT_LIMIT:
        return False
    extra = flow.extra
    # A finite sum means every value is finite (NaN and inf propagate); a sum that overflows
    # merely sends the record down the generic path, which decides precisely.
    return len(extra) <= 128 and math.isfinite(sum(extra.values()))
