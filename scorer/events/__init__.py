"""Event schemas and decoders for the three kinds the scorer consumes."""

from scorer.events.decode import DecodeFailure, EventDecoder, decode_mapping, parse_kind
from scorer.events.structs import (
    EndpointEvent,
    Event,
    EventKind,
    FlowRecord,
    RecordFailure,
    SiemAlert,
    SourceRef,
    entity_key,
)

__all__ = [
    "DecodeFailure",
    "EndpointEvent",
    "Event",
    "EventDecoder",
    "EventKind",
    "FlowRecord",
    "RecordFailure",
    "SiemAlert",
    "SourceRef",
    "decode_mapping",
    "entity_key",
    "parse_kind",
]
