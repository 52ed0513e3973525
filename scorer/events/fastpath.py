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

from scorer.events.convert import _MISSING, MAX_TEXT
from scorer.events.structs import STRUCT_OF_KIND, EndpointEvent, Event, EventKind, FlowRecord

_DECODERS = {kind: msgspec.json.Decoder(struct) for kind, struct in STRUCT_OF_KIND.items()}
_INT_LIMIT = 2**62
_FLOW_TEXT = ("uid", "src_ip", "dst_ip", "proto", "service", "conn_state", "history", "source", "label")
_FLOW_INT = ("src_port", "dst_port", "src_bytes", "dst_bytes", "src_pkts", "dst_pkts")
_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)


def decode_canonical(kind: EventKind, value: bytes) -> Event | None:
    try:
        event: Event = _DECODERS[kind].decode(value)
    except _ERRORS:
        return None
    if not math.isfinite(event.ts):
        return None
    if isinstance(event, FlowRecord):
        return event if _flow_ok(event) else None
    if isinstance(event, EndpointEvent) and event.process_id is not None and abs(event.process_id) > _INT_LIMIT:
        return None
    return event


def _flow_ok(flow: FlowRecord) -> bool:
    # The generic path lower-cases proto, reads "-"/"" as unset, bounds text and numbers.
    if not flow.proto.islower() or not math.isfinite(flow.duration):
        return False
    if flow.src_ip in _MISSING or flow.dst_ip in _MISSING:
        return False
    for name in _FLOW_TEXT:
        text = getattr(flow, name)
        if text is None or (name == "uid" and text == ""):  # "" is the uid's own default
            continue
        if len(text) > MAX_TEXT or text in _MISSING:
            return False
    if any(abs(getattr(flow, name)) > _INT_LIMIT for name in _FLOW_INT):
        return False
    extra = flow.extra
    # A finite sum means every value is finite (NaN and inf propagate); a sum that overflows
    # merely sends the record down the generic path, which decides precisely.
    return len(extra) <= 128 and math.isfinite(sum(extra.values()))
