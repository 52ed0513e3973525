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
from typing import Any

import msgspec

from scorer.events.columnar import decode_rows, where
from scorer.events.decode import DecodeFailure, EventDecoder
from scorer.events.structs import Event, EventKind
from scorer.features.base import column
from scorer.pipeline.batch import Batch, Item, Runtimes
from scorer.pipeline.records import InputRecord


def decode(decoder: EventDecoder, records: Sequence[InputRecord], runtimes: Runtimes, shadows: Runtimes) -> Batch:
    """A new :class:`Batch` of ``records``: events grouped by kind, failures aside."""
    batch = Batch(records, runtimes, shadows)
    kinds = column(records, "kind")
    failed: list[tuple[int, DecodeFailure]] = []
    groups: dict[EventKind | None, list[int]] = where(kinds)  # each kind's records, in record order
    for kind, at in _scored(groups, runtimes).items():
        if kind is None:  # no model scores it: unknown_kind, said by the decoder
            for i in at:
                out = _one(decoder, None, records[i])
                assert isinstance(out, DecodeFailure)
                failed.append((i, out))
            continue
        recs = records if len(at) == len(records) else [records[i] for i in at]
        # Row views only for a feature set that reads them (v1 netflow); others get events.
        views = getattr(runtimes[kind].features, "reads_views", False)
        rows = decode_rows(kind, column(recs, "value"), decoder.max_record_bytes, views)
        if None not in rows and all(column(rows, "uid")):
            decoded: list[Any] = rows  # every row decoded (None is not in it)
            batch.by_kind[kind] = list(zip(decoded, recs, strict=True))  # the common case: no Python loop
            continue
        items: list[Item] = []
        for i, rec, row in zip(at, recs, rows, strict=True):
            if row is None:
                out = _one(decoder, kind, rec)
                if isinstance(out, DecodeFailure):
                    failed.append((i, out))
                    continue
                row = out
            elif not row.uid:
                row = msgspec.structs.replace(row, uid=f"{rec.topic}:{rec.partition}:{rec.offset}")
            items.append((row, rec))
        if items:
            batch.by_kind[kind] = items
    # Dead letters in record order, as a record-by-record decode gives them.
    batch.failures.extend(f for _, f in sorted(failed, key=lambda pair: pair[0]))
    for kind, at in groups.items():  # the kinds in the order they first appear, as a Counter lists them
        batch.consumed[kind.value if kind else "unknown"] += len(at)
    return batch


def _scored(groups: dict[EventKind | None, list[int]], runtimes: Runtimes) -> dict[EventKind | None, list[int]]:
    """``groups`` (each kind's records) with the kinds no model scores merged under None, in
    record order."""
    if all(map(runtimes.__contains__, groups)):  # every kind scored here (the common case)
        return groups
    out: dict[EventKind | None, list[int]] = defaultdict(list)
    for kind, rows in groups.items():
        out[kind if kind in runtimes else None].extend(rows)
    for rows in out.values():
        rows.sort()
    return out


def _one(decoder: EventDecoder, kind: EventKind | None, rec: InputRecord) -> Event | DecodeFailure:
    return decoder.decode(kind, rec.value, rec.ref, rec.key)
