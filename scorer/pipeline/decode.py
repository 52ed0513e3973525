"""Step 1, decode: each record's bytes -> a canonical event of its kind, or a failure.

The records arrive with the kind their topic (or ``kind`` header) gave them; a kind no
model scores here is ``unknown_kind``. Every record is counted as consumed under its kind,
which is the left side of ``consumed = scored + dead-lettered``.

Each kind's values are decoded together (:func:`scorer.events.columnar.decode_rows`);
the records that path refuses are decoded one by one (:class:`EventDecoder`), which
accepts every source form and gives each bad record its precise dead-letter reason. Events
keep their records' order within a kind: stateful features update in arrival order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import msgspec

from scorer.events.columnar import decode_rows
from scorer.events.decode import DecodeFailure, EventDecoder
from scorer.events.structs import Event, EventKind
from scorer.pipeline.batch import Batch, Item, Runtimes
from scorer.pipeline.records import InputRecord


def decode(decoder: EventDecoder, records: Sequence[InputRecord], runtimes: Runtimes, shadows: Runtimes) -> Batch:
    """A new :class:`Batch` of ``records``: events grouped by kind, failures aside."""
    batch = Batch(records, runtimes, shadows)
    positions: dict[EventKind | None, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        positions[rec.kind if rec.kind in runtimes else None].append(i)
    failed: list[tuple[int, DecodeFailure]] = []
    for kind, where in positions.items():
        if kind is None:  # no model scores it: unknown_kind, said by the decoder
            for i in where:
                out = _one(decoder, None, records[i])
                assert isinstance(out, DecodeFailure)
                failed.append((i, out))
            continue
        recs = [records[i] for i in where]
        # Row views only for a feature set that reads them (v1 netflow); others get events.
        views = getattr(runtimes[kind].features, "reads_views", False)
        rows = decode_rows(kind, [r.value for r in recs], decoder.max_record_bytes, views)
        items: list[Item] = batch.by_kind[kind]
        for i, rec, row in zip(where, recs, rows, strict=True):
            if row is None:
                out = _one(decoder, kind, rec)
                if isinstance(out, DecodeFailure):
                    failed.append((i, out))
                    continue
                row = out
            elif not row.uid:
                row = msgspec.structs.replace(row, uid=f"{rec.ref.topic}:{rec.ref.partition}:{rec.ref.offset}")
            items.append((row, rec))
        if not items:
            del batch.by_kind[kind]
    # Dead letters in record order, as a record-by-record decode gives them.
    batch.failures.extend(f for _, f in sorted(failed, key=lambda pair: pair[0]))
    for rec in records:
        batch.consumed[rec.kind.value if rec.kind else "unknown"] += 1
    return batch


def _one(decoder: EventDecoder, kind: EventKind | None, rec: InputRecord) -> Event | DecodeFailure:
    return decoder.decode(kind, rec.value, rec.ref, rec.key)
