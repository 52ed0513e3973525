"""Small immutable records moving through the pipeline (aiokafka ``structs.py`` style)."""

from __future__ import annotations

import msgspec

from scorer.events.structs import EventKind, SourceRef


class InputRecord(msgspec.Struct, frozen=True, gc=False):
    """One record as the consumer returned it, before decoding, and where it was in Kafka."""

    # One object per fetched record: its place is kept in its own fields rather than in a
    # SourceRef of its own, which only dead letters, alerts and a uid-less event read (the
    # ``ref`` property builds it for them). The second struct per record was built and freed
    # with every batch (docs/benchmarks.md section 40). offset and timestamp (ms) are named as
    # aiokafka's ConsumerRecord names them: the loop reads both kinds of record alike.
    # gc=False: strings, bytes, ints and an EventKind only (no reference cycle possible); the
    # EventKind alone would make msgspec track every record and the collector scan it.

    kind: EventKind | None
    value: bytes | None
    key: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp: int = 0

    @property
    def ref(self) -> SourceRef:
        return SourceRef(self.topic, self.partition, self.offset, self.timestamp)


class OutputRecord(msgspec.Struct, frozen=True, gc=False):
    """One record to produce: an alert, a dead letter or a score (a :class:`scorer.kafka.Record`)."""

    # gc=False: one per score record, holding strings, bytes and ints only (no reference
    # cycle possible): the collector need not track or scan them.

    topic: str
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None  # None: placed by key, as ``send()`` would
