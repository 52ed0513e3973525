"""The fast fetch's record-batch loop against aiokafka's own, on fetched bytes made here: batches
of one record and of many, plain, idempotent and transactional producers, an aborted
transaction with its marker, a fetch starting inside a batch, every ``max_records``."""

from __future__ import annotations

import random
from typing import Any, cast

import pytest
from aiokafka import TopicPartition
from aiokafka.consumer import fetcher as aiokafka_fetcher
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from scorer.events.structs import EventKind
from scorer.kafka.fetch import _Rows
from scorer.pipeline.records import InputRecord
from scorer.pipeline.source import _inputs_of
from tests.support.native import use_native

TP = TopicPartition("events.edr", 0)
_CONTROL = 0x20  # the attributes' control-batch bit
# A control record's key: version 0, then its type: 0 abort, 1 commit.
_ABORT, _COMMIT = b"\x00\x00\x00\x00", b"\x00\x00\x00\x01"


def _batch(base: int, values: list[bytes | None], producer: int = -1, transactional: bool = False,
           marker: bytes | None = None) -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=int(transactional),
                                        producer_id=producer, producer_epoch=0 if producer >= 0 else -1,
                                        base_sequence=base if producer >= 0 else -1, batch_size=1 << 30)
    for i, value in enumerate(values):
        key = marker if marker is not None else b"k%d" % (base + i) if i % 3 else None
        builder.append(i, timestamp=1_700_000_000_000 + base + i, key=key, value=value, headers=[])
    raw = bytearray(builder.build())
    raw[0:8] = base.to_bytes(8, "big")
    if marker is not None:
        raw[22] |= _CONTROL  # (attributes, big-endian int16 at 21; CRCs are not checked here)
    return bytes(raw)


def _log(rnd: random.Random) -> tuple[bytes, list[tuple[int, int]]]:
    """Fetched bytes of batches of 1-40 records, and the aborted transactions among them."""
    out, aborted, offset = b"", [], 0
    for _ in range(rnd.randrange(5, 40)):
        n = rnd.choice([1, 1, 2, 3, 7, 16, 40])
        values = [b'{"n":%d}' % (offset + i) if rnd.random() < 0.9 else None for i in range(n)]
        how = rnd.random()
        if how < 0.15:  # a transaction, aborted: its records are skipped up to its marker
            producer = rnd.randrange(100, 200)
            out += _batch(offset, values, producer, transactional=True)
            aborted.append((producer, offset))
            offset += n
            out += _batch(offset, [None], producer, transactional=True, marker=_ABORT)
            offset += 1
        elif how < 0.3:  # a transaction, committed
            producer = rnd.randrange(200, 300)
            out += _batch(offset, values, producer, transactional=True)
            offset += n
            out += _batch(offset, [None], producer, transactional=True, marker=_COMMIT)
            offset += 1
        else:
            out += _batch(offset, values, rnd.choice([-1, 7]))
            offset += n
    return out, aborted


def _records(data: bytes, aborted: list[tuple[int, int]], start: int) -> Any:
    return aiokafka_fetcher.PartitionRecords(TP, MemoryRecords(data), list(aborted), start, None, None, False,
                                             aiokafka_fetcher.READ_COMMITTED)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("native", ["0", "1"])
def test_the_record_batch_loop_reads_what_aiokafka_reads(seed: int, native: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    use_native(monkeypatch, native)
    rnd = random.Random(seed)
    data, aborted = _log(rnd)
    last = max(m.offset for m in _records(data, aborted, 0)) if list(_records(data, aborted, 0)) else 0
    start = rnd.choice([0, 0, rnd.randrange(0, last + 1)])
    expected_records = _records(data, aborted, start)
    expected = [(m.offset, m.key, m.value, m.timestamp) for m in expected_records]
    records = _records(data, aborted, start)
    rows = _Rows(TP, lambda topic, partition: _inputs_of(topic, partition, EventKind.EDR))
    got: list[tuple[int, bytes | None, bytes | None, int]] = []
    max_records = rnd.choice([1, 3, 17, 2000])
    while True:
        rows_taken, done = rows.take(records, max_records)
        taken = cast(list[InputRecord], rows_taken)
        assert len(taken) <= max_records
        got += [(r.offset, r.key, r.value, r.timestamp) for r in taken]
        if taken:  # past what was handed out (and past the markers and aborted batches read after it)
            assert records.next_fetch_offset >= taken[-1].offset + 1
        if done:
            break
    assert got == expected
    again = _Rows(TP, lambda t, p: _inputs_of(t, p, EventKind.EDR)).take(_records(data, aborted, start), 2000)[0]
    assert all(cast(InputRecord, r).kind == EventKind.EDR for r in again)
    # Past the last batch (a marker or aborted records included), as aiokafka leaves it.
    assert records.next_fetch_offset == expected_records.next_fetch_offset
