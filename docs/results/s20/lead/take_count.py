"""Instructions of _Rows.take per record: run under cachegrind with REPS 1 and 3, (I3 - I1) / (2 * 4,000).
    PYTHONPATH=TREE valgrind --tool=cachegrind --cache-sim=no python -P take_count.py PER_BATCH REPS"""
import sys
sys.argv, args = sys.argv[:1], sys.argv[1:]
exec(open(__file__.replace("take_count.py", "take_bench.py")).read().split("for per in")[0])
per, reps = int(args[0]), int(args[1])
data = raw(per, 4000)
for _ in range(reps):
    recs = F.PartitionRecords(tp, MemoryRecords(data), [], 0, None, None, False, F.READ_COMMITTED)
    rows = _Rows(tp, build)
    while not rows.take(recs, 2000)[1]:
        pass
