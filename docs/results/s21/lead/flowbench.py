"""Stats.rows over the realistic stream's netflow values: best-of time per flow (or N passes for cachegrind).
    RECORDS=<cgfun.py's records.pickle> python flowbench.py [time | count N]"""
import os
import pickle, sys, time
from scorer.events.flowviews import stats_reader
items = pickle.load(open(os.environ.get('RECORDS', '/tmp/s21/cgf/records.pickle'), 'rb'))
vals = [v for k, _, v in items if k == 'netflow'][:4096]
st = stats_reader()
mode = sys.argv[1] if len(sys.argv) > 1 else "time"
if mode == "count":
    n = int(sys.argv[2])
    for _ in range(n):
        rows = st.rows(vals, 1 << 20)
        del rows
else:
    best = 1e9
    for _ in range(15):
        t = time.perf_counter(); rows = st.rows(vals, 1 << 20); best = min(best, time.perf_counter() - t); del rows
    print(f"Stats.rows: {best / len(vals) * 1e9:.0f} ns/flow (best of 15, {len(vals)} flows)")
