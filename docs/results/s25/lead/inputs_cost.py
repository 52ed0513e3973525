"""InputRecords from one v2 record batch: the C path over aiokafka's record objects, and a Python reference.
   .venv/bin/python docs/results/s25/lead/inputs_cost.py"""
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from aiokafka.record.default_records import DefaultRecordBatchBuilder, DefaultRecordBatch
from scorer.pipeline.records import InputRecord
from scorer.pipeline.source import _kind
import scorer.native
k = scorer.native.module("_kafka")
N = 1700
b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1<<30)
for i in range(N):
    b.append(i, timestamp=1700000000000 + i, key=b"k%06d" % i, value=os.urandom(350).hex().encode(), headers=[])
buf = bytes(b.build())
print("batch bytes", len(buf))
def run(reps=200):
    best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            rows = k.inputs(DefaultRecordBatch(buf), "t", 0, None, _kind, InputRecord)
            del rows
        best = min(best, (time.perf_counter() - t) / reps / N * 1e6)
    return best
print("current inputs(DefaultRecordBatch) us/record", round(run(), 3))
def copyonly(reps=200):
    best = 1e9
    mv = memoryview(buf)
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            rows = [InputRecord(None, bytes(mv[i*700:(i*700)+700]), b"k", "t", 0, i, 0) for i in range(N)]
            del rows
        best = min(best, (time.perf_counter() - t) / reps / N * 1e6)
    return best
print("python: bytes copy + InputRecord us/record", round(copyonly(), 3))
