"""Dead-letter records: the original bytes, byte for byte, with why and where in headers.

The header names follow Kafka Connect's dead-letter context headers in spirit, so the
same tooling (kcat -J, Connect replayers) can read them.

A record already at the broker's size limit cannot carry headers on top of its bytes: the
broker would refuse the dead letter, the batch would never be acknowledged and the scorer
would crash-loop on that record. Past ``max_bytes`` the dead letter keeps a prefix of the
value plus ``original_bytes`` and ``original_sha256`` headers; the whole original stays at
``topic``/``partition``/``offset`` for as long as the source topic keeps it.
"""

from __future__ import annotations

import hashlib

from scorer.events.structs import RecordFailure
from scorer.pipeline.records import OutputRecord

HEADER_PREFIX = "scorer.dlq."
# Kafka's default message.max.bytes is 1,048,588 per record batch; leave room for the batch
# and record framing.
MAX_DEAD_LETTER_BYTES = 1_000_000


def dead_letter(failure: RecordFailure, topic: str, max_bytes: int = MAX_DEAD_LETTER_BYTES) -> OutputRecord:
    """The dead letter of ``failure``; its value is truncated only past ``max_bytes`` in all.

    >>> from scorer.events.structs import SourceRef
    >>> f = RecordFailure("oversized_record", "too big", SourceRef("events.siem", 0, 7), b"x" * 5000)
    >>> rec = dead_letter(f, "events.dlq", max_bytes=1000)
    >>> len(rec.value) < 1000, dict(rec.headers)["scorer.dlq.original_bytes"]
    (True, b'5000')
    """
    ref = failure.ref
    value = failure.value or b""
    headers: tuple[tuple[str, bytes], ...] = (
        (f"{HEADER_PREFIX}reason", failure.reason.encode()),
        (f"{HEADER_PREFIX}message", failure.message.encode("utf-8", "replace")[:1024]),
        (f"{HEADER_PREFIX}topic", ref.topic.encode()),
        (f"{HEADER_PREFIX}partition", str(ref.partition).encode()),
        (f"{HEADER_PREFIX}offset", str(ref.offset).encode()),
        (f"{HEADER_PREFIX}timestamp", str(ref.timestamp_ms).encode()),
        (f"{HEADER_PREFIX}kind", (failure.kind or "").encode()),
    )
    framing = len(failure.key or b"") + sum(len(k) + len(v) for k, v in headers)
    if len(value) + framing > max_bytes:
        headers += (
            (f"{HEADER_PREFIX}original_bytes", str(len(value)).encode()),
            (f"{HEADER_PREFIX}original_sha256", hashlib.sha256(value).hexdigest().encode()),
        )
        value = value[: max(0, max_bytes - framing - 256)]
    return OutputRecord(topic, value, failure.key, headers)


def header_dict(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> dict[str, str]:
    """Decoded dead-letter headers, without the prefix (``reason``, ``offset`` ...)."""
    return {
        k[len(HEADER_PREFIX):]: v.decode("utf-8", "replace")
        for k, v in headers
        if k.startswith(HEADER_PREFIX)
    }
