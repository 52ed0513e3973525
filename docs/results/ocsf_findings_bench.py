"""Build + encode cost of one Detection Finding, the 1.3.0 layout (before issue 21) and the
1.8.0 layout side by side in one run, on the demo capture's events of every kind.

    git show f794936:scorer/alerts/ocsf.py > /tmp/ocsf_old.py
    PYTHONPATH=. .venv/bin/python docs/results/ocsf_findings_bench.py /tmp/ocsf_old.py
"""

import gzip
import importlib.util
import sys
import time
from typing import Any

import msgspec

from scorer.alerts import ocsf as new
from scorer.alerts.decide import Decision
from scorer.demo import CaptureLine, bundled_capture
from scorer.events.structs import STRUCT_OF_KIND, Event, EventKind, SourceRef

spec = importlib.util.spec_from_file_location("ocsf_old", sys.argv[1])
assert spec is not None and spec.loader is not None
old = importlib.util.module_from_spec(spec)
spec.loader.exec_module(old)
events: dict[EventKind, list[Event]] = {k: [] for k in EventKind}
with gzip.open(bundled_capture(), "rb") as fh:
    for line in fh:
        c = msgspec.json.decode(line, type=CaptureLine)
        events[EventKind(c.kind)].append(msgspec.json.decode(c.event, type=STRUCT_OF_KIND[EventKind(c.kind)]))
DECISION = Decision(0, 0.93, "High", [("a", 1.0, 2.0), ("b", 0.5, 1.0), ("c", 0.1, 0.2)])
REF = SourceRef("events.x", 0, 1)


def run(mod: Any, evs: list[Event], kind: str) -> tuple[float, float]:
    """µs (CPU time of this thread: the machine is shared) and bytes per finding."""
    start, size = time.thread_time(), 0
    for ev in evs:
        size += len(mod.encode(mod.detection_finding(
            kind=kind, event=ev, decision=DECISION, model_name="m", model_version="1", threshold=0.5,
            backend="onnxruntime", ref=REF, now_ms=1)))
    return (time.thread_time() - start) / len(evs) * 1e6, size / len(evs)


print(f"{'kind':8} {'events':>6} | {'1.3.0 us':>9} {'bytes':>6} | {'1.8.0 us':>9} {'bytes':>6}")
for kind, evs in events.items():
    evs = (evs * (4000 // max(len(evs), 1) + 1))[:4000]
    res: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
    for _ in range(15):  # interleaved, best of 15: both layouts see the same machine load
        for name, mod in (("old", old), ("new", new)):
            res[name].append(run(mod, evs, kind.value))
    (o, ob), (n, nb) = min(res["old"]), min(res["new"])
    print(f"{kind.value:8} {len(evs):6} | {o:9.2f} {ob:6.0f} | {n:9.2f} {nb:6.0f}")
