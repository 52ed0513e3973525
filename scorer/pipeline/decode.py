"""Step 1, decode: each record's bytes -> a canonical event of its kind, or a failure.

The records arrive with the kind their topic (or ``kind`` header) gave them; a kind no
model scores here is ``unknown_kind``. Every record is counted as consumed under its kind,
which is the left side of ``consumed = scored + dead-lettered``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from scorer.events.decode import DecodeFailure, EventDecoder
from scorer.events.structs import EventKind
from scorer.pipeline.batch import Batch, Runtimes
from scorer.pipeline.records import InputRecord


def decode(decoder: EventDecoder, records: Sequence[InputRecord], runtimes: Runtimes, shadows: Runtimes) -> Batch:
    """A new :class:`Batch` of ``records``: events grouped by kind, failures aside."""
    batch = Batch(records, runtimes, shadows)
    failures, by_kind = batch.failures, batch.by_kind
    decode_one = decoder.decode  # bound once: this loop runs per record
    per_kind: dict[EventKind | None, int] = defaultdict(int)
    for rec in records:
        kind = rec.kind
        per_kind[kind] += 1
        out = decode_one(kind if kind in runtimes else None, rec.value, rec.ref, rec.key)
        if isinstance(out, DecodeFailure):
            failures.append(out)
        else:
            by_kind[kind].append((out, rec))  # type: ignore[index]  # decoded: kind is set
    for kind, n in per_kind.items():
        batch.consumed[kind.value if kind else "unknown"] += n
    return batch
