"""Reading captures (Zeek, CICFlowMeter, OTRF, Event XML, AIT-ADS, canonical JSON lines)."""

from replay.readers import (
    CaptureFormat,
    LabeledEvent,
    ReadError,
    detect_format,
    is_malicious,
    iter_capture,
    kind_of,
    write_canonical,
)

__all__ = [
    "CaptureFormat",
    "LabeledEvent",
    "ReadError",
    "detect_format",
    "is_malicious",
    "iter_capture",
    "kind_of",
    "write_canonical",
]
