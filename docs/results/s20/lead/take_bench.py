"""_Rows.take over a real PartitionRecords of 2,000 records of 800 bytes, by records per batch (best of 7).
    PYTHONPATH=TREE python -P docs/results/s20/lead/take_bench.py"""
import time, json, sys
from aiokafka import TopicPartition
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.consumer import fetcher as F
from scorer.kafka.fetch import _Rows
from scorer.pipeline.source import _inputs
from scorer.events.structs import EventKind
val = b'{"kind":"edr"' + b' ' * 800 + b'}'
def raw(per_batch, total):
    out = b""; off = 0
    while off < total:
        b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=7, producer_epoch=0, base_sequence=off, batch_size=10**8)
        for i in range(per_batch):
            b.append(i, timestamp=1700000000000 + off + i, key=b"h%d" % (off % 7), value=val, headers=[])
        buf = bytearray(b.build())
        buf[0:8] = off.to_bytes(8, "big")  # base offset
        out += bytes(buf); off += per_batch
    return out
tp = TopicPartition("events.edr", 0)
try:  # a partition's builder made once (session 20), or the builder of every batch (before)
    from scorer.pipeline.source import _inputs_of
    build = lambda t, p: _inputs_of(t, p, EventKind.EDR)
except ImportError:
    build = lambda t, p, m: _inputs(t, p, EventKind.EDR, m)
for per in (1, 2, 10, 50, 500):
    data = raw(per, 2000)
    best = 1e9
    for _ in range(7):
        recs = F.PartitionRecords(tp, MemoryRecords(data), [], 0, None, None, False, F.READ_COMMITTED)
        rows = _Rows(tp, build)
        t = time.perf_counter(); n = 0
        while True:
            got, done = rows.take(recs, 2000); n += len(got)
            if done: break
        best = min(best, time.perf_counter() - t)
    print(f"{per:4d} records/batch: {best / n * 1e6:.3f} us/record ({n} records)")
