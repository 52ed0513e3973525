"""_Rows.take over a real PartitionRecords of 2,000 records of 800 bytes, by records per batch (best of 7):
aiokafka's reader with the C builder (`inputs`) against the batches read from their bytes (`batch_inputs`),
alternated in one process.
    git apply docs/results/s23/lead/batch_inputs.patch && (rebuild _kafka) && .venv/bin/python -P docs/results/s23/lead/take_bench.py
(from the repo root; not shipped: docs/benchmarks.md section 58)"""
import time
from aiokafka import TopicPartition
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.consumer import fetcher as F
from scorer.kafka.fetch import RetainedRecords, _Rows
from scorer.pipeline.source import _inputs_of, _parse_of
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
build = lambda t, p: _inputs_of(t, p, EventKind.EDR)
parse = _parse_of({"events.edr": EventKind.EDR})
for per in (1, 2, 10, 50, 500):
    data = raw(per, 2000)
    best = {"aiokafka reader": 1e9, "from bytes": 1e9}
    for _ in range(7):
        for how in best:
            bytes_ = how == "from bytes"
            recs = F.PartitionRecords(tp, RetainedRecords(data) if bytes_ else MemoryRecords(data), [], 0, None, None,
                                      False, F.READ_COMMITTED)
            rows = _Rows(tp, build, parse if bytes_ else None, data if bytes_ else None)
            t = time.perf_counter(); n = 0
            while True:
                got, done = rows.take(recs, 2000); n += len(got)
                if done: break
            best[how] = min(best[how], time.perf_counter() - t)
    a, b = best["aiokafka reader"], best["from bytes"]
    print(f"{per:4d} records/batch: aiokafka reader {a / n * 1e6:.3f}, from bytes {b / n * 1e6:.3f} us/record "
          f"({b / a:.2f}x; {n} records)")
