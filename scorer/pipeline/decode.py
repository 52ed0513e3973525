"""Step 1, decode: each record's bytes -> a canonical event of its kind, or a failure.

The records arrive with the kind their topic (or ``kind`` header) gave them; a kind no
model scores here is ``unknown_kind``. Every record is counted as consumed under its kind,
which is the left side of ``consumed = scored + dead-lettered``.

Each kind's values are decoded together (:func:`scorer.events.columnar.decode_kind`);
the records that path refuses are decoded one by one (:class:`EventDecoder`), which
accepts every source form and gives each bad record its precise dead-letter reason. Events
keep their records' order within a kind: stateful features update in arrival order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec

from scorer.events.columnar import decode_kind, where
from scorer.events.decode import DecodeFailure, EventDecoder
from scorer.events.structs import Event, EventKind
from scorer.features.base import column
from scorer.pipeline.batch import Batch, Item, Runtimes
from scorer.pipeline.records import InputRecord


def decode(decoder: EventDecoder, records: Sequence[InputRecord], runtimes: Runtimes, shadows: Runtimes) -> Batch:
    """A new :class:`Batch` of ``records``: events grouped by kind, failures aside."""
    batch = Batch(records, runtimes, shadows)
    listed = records if isinstance(records, list) else list(records)
    failed: list[tuple[int, DecodeFailure]] = []
    groups: dict[EventKind | None, list[int]] = where(column(listed, "kind"))  # each kind's records, in order
    by_kind, max_bytes = batch.by_kind, decoder.max_record_bytes
    for kind, at in _scored(groups, runtimes).items():
        if kind is None:  # no model scores it: unknown_kind, said by the decoder
            for i in at:
                out = _one(decoder, None, listed[i])
                assert isinstance(out, DecodeFailure)
                failed.append((i, out))
            continue
        recs = listed if len(at) == len(listed) else list(map(listed.__getitem__, at))
        # Row views only for a feature set that reads them (v1 netflow); others get events.
        rows, whole = decode_kind(kind, column(recs, "value"), max_bytes,
                                  getattr(runtimes[kind].features, "reads_views", False))
        if whole:  # every row decoded, each with its uid: the common case, no Python loop
            decoded: list[Any] = rows  # None is not in it
            by_kind[kind] = list(zip(decoded, recs, strict=True))
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
            by_kind[kind] = items
    if failed:  # dead letters in record order, as a record-by-record decode gives them
        batch.failures.extend(f for _, f in sorted(failed, key=lambda pair: pair[0]))
    consumed = batch.consumed
    for kind, at in groups.items():  # the kinds in the order they first appear, as a Counter lists them
        consumed[_NAMES[kind]] += len(at)
    return batch


_NAMES: dict[EventKind | None, str] = {**{kind: kind.value for kind in EventKind}, None: "unknown"}


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
