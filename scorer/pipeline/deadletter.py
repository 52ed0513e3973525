"""Dead-letter records: the original bytes, byte for byte, with why and where in headers.

The header names follow Kafka Connect's dead-letter context headers in spirit, so the
same tooling (kcat -J, Connect replayers) can read them.
"""

from __future__ import annotations

from scorer.events.decode import DecodeFailure
from scorer.pipeline.records import OutputRecord

HEADER_PREFIX = "scorer.dlq."


def dead_letter(failure: DecodeFailure, topic: str) -> OutputRecord:
    ref = failure.ref
    headers = (
        (f"{HEADER_PREFIX}reason", failure.reason.encode()),
        (f"{HEADER_PREFIX}message", failure.message.encode("utf-8", "replace")[:1024]),
        (f"{HEADER_PREFIX}topic", ref.topic.encode()),
        (f"{HEADER_PREFIX}partition", str(ref.partition).encode()),
        (f"{HEADER_PREFIX}offset", str(ref.offset).encode()),
        (f"{HEADER_PREFIX}timestamp", str(ref.timestamp_ms).encode()),
        (f"{HEADER_PREFIX}kind", (failure.kind or "").encode()),
    )
    return OutputRecord(topic, failure.value or b"", failure.key, headers)


def header_dict(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> dict[str, str]:
    """Decoded dead-letter headers, without the prefix (``reason``, ``offset`` ...)."""
    return {
        k[len(HEADER_PREFIX):]: v.decode("utf-8", "replace")
        for k, v in headers
        if k.startswith(HEADER_PREFIX)
    }
