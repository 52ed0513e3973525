"""``scorer record`` dumps: Kafka records as JSON lines (see :mod:`replay.record`).

Only the file side lives here (no Kafka client), so that capture discovery recognises a
dump wherever it finds one, inside a folder of captures too.

A record whose ``value`` is null is a tombstone (a compacted topic's delete marker): it is
a record like any other and is replayed as one, never reported as an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec

from scorer.captures.base import MAX_RAW, ReadError, numbered_lines, open_binary


class Envelope(msgspec.Struct, frozen=True):
    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: int = 0  # 0 CreateTime (set by the producer), 1 LogAppendTime (broker)
    key: bytes | None = None
    value: bytes | None = None  # None: a tombstone
    headers: list[tuple[str, bytes]] = []


_REQUIRED = frozenset({"topic", "partition", "offset", "timestamp"})


def is_record_line(first: object) -> bool:
    """Whether a file's first decoded JSON line is a dump's record."""
    return isinstance(first, dict) and first.keys() >= _REQUIRED


def is_record_file(path: Path) -> bool:
    """Whether ``path`` is a ``scorer record`` dump (checked on its first line)."""
    try:
        with open_binary(path) as fh:
            first = next((line for _, line in numbered_lines(fh)), b"")
        return is_record_line(msgspec.json.decode(first))
    except (OSError, EOFError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return False


def read_envelopes(path: Path) -> Iterator[Envelope | ReadError]:
    """Every record of a dump, in file order; a line that is no record is a ReadError."""
    decoder = msgspec.json.Decoder(Envelope)
    with open_binary(path) as fh:
        for number, line in numbered_lines(fh):
            try:
                yield decoder.decode(line)
            except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
                yield ReadError(str(path), number, "malformed_record", str(exc), line[:MAX_RAW])
