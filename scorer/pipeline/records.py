"""Small immutable records moving through the pipeline (aiokafka ``structs.py`` style)."""

from __future__ import annotations

import msgspec

from scorer.events.structs import EventKind, SourceRef


class InputRecord(msgspec.Struct, frozen=True):
    """One record as the consumer returned it, before decoding."""

    kind: EventKind | None
    value: bytes | None
    key: bytes | None
    ref: SourceRef

    # What the loop reads of a fetched record, whether aiokafka's ConsumerRecord or this
    # (scorer.kafka.fetch builds these from the fetched batches directly).
    @property
    def offset(self) -> int:
        return self.ref.offset

    @property
    def timestamp(self) -> int:
        return self.ref.timestamp_ms


class OutputRecord(msgspec.Struct, frozen=True, gc=False):
    """One record to produce: an alert, a dead letter or a score (a :class:`scorer.kafka.Record`)."""

    # gc=False: one per score record, holding strings, bytes and ints only (no reference
    # cycle possible): the collector need not track or scan them.

    topic: str
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None  # None: placed by key, as ``send()`` would
