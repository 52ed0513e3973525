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

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

from scorer.events.columnar import decode_rows
from scorer.events.decode import DecodeFailure, EventDecoder
from scorer.events.structs import Event, EventKind
from scorer.features.base import column
from scorer.features.texts import factorize
from scorer.pipeline.batch import Batch, Item, Runtimes
from scorer.pipeline.records import InputRecord


def decode(decoder: EventDecoder, records: Sequence[InputRecord], runtimes: Runtimes, shadows: Runtimes) -> Batch:
    """A new :class:`Batch` of ``records``: events grouped by kind, failures aside."""
    batch = Batch(records, runtimes, shadows)
    kinds = column(records, "kind")
    failed: list[tuple[int, DecodeFailure]] = []
    for kind, where in _positions(kinds, runtimes).items():
        if kind is None:  # no model scores it: unknown_kind, said by the decoder
            for i in where:
                out = _one(decoder, None, records[i])
                assert isinstance(out, DecodeFailure)
                failed.append((i, out))
            continue
        recs = records if len(where) == len(records) else [records[i] for i in where]
        # Row views only for a feature set that reads them (v1 netflow); others get events.
        views = getattr(runtimes[kind].features, "reads_views", False)
        rows = decode_rows(kind, column(recs, "value"), decoder.max_record_bytes, views)
        if None not in rows and all(column(rows, "uid")):
            decoded: list[Any] = rows  # every row decoded (None is not in it)
            batch.by_kind[kind] = list(zip(decoded, recs, strict=True))  # the common case: no Python loop
            continue
        items: list[Item] = []
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
        if items:
            batch.by_kind[kind] = items
    # Dead letters in record order, as a record-by-record decode gives them.
    batch.failures.extend(f for _, f in sorted(failed, key=lambda pair: pair[0]))
    for kind, n in Counter(kinds).items():
        batch.consumed[kind.value if kind else "unknown"] += n
    return batch


def _positions(kinds: list[EventKind | None], runtimes: Runtimes) -> dict[EventKind | None, list[int]]:
    """Where each kind's records are (None: kinds no model scores), in record order."""
    distinct, inverse = factorize(kinds)
    if len(distinct) == 1:
        only = distinct[0] if distinct[0] in runtimes else None
        return {only: list(range(len(kinds)))}
    out: dict[EventKind | None, list[int]] = defaultdict(list)
    for j, kind in enumerate(distinct):
        out[kind if kind in runtimes else None].extend(np.flatnonzero(inverse == j).tolist())
    for where in out.values():
        where.sort()
    return out


def _one(decoder: EventDecoder, kind: EventKind | None, rec: InputRecord) -> Event | DecodeFailure:
    return decoder.decode(kind, rec.value, rec.ref, rec.key)
