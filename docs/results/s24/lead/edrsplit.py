"""An EDR record's columnar decode by part: msgspec's EndpointRow, the FieldMap index, the whole-event decode, and a
struct of one field (what msgspec's parse of the rest costs). SCORER_DATA_DIR=../shared/data python edrsplit.py"""
import argparse, os, time
from pathlib import Path
import msgspec
from scorer.bench.stages import _records
from scorer.events.structs import EventKind, EndpointEvent
from scorer.events.edrrows import ROW_DECODER, index_rows
args = argparse.Namespace(stream="realistic", attack_share=0.01, data_dir=Path(os.environ.get("SCORER_DATA_DIR", "../shared/data")))
vals = [r.value for r in _records(30000, args) if r.kind is EventKind.EDR][:8192]
def best(f, n=7):
    b = 1e9
    for _ in range(n):
        t = time.process_time(); f(); b = min(b, time.process_time() - t)
    return b / len(vals) * 1e6
dec = ROW_DECODER.decode
print("ROW_DECODER", round(best(lambda: list(map(dec, vals))), 3))
rows = list(map(dec, vals))
def idx():
    rs = list(map(dec, vals)); index_rows(rs)
print("ROW_DECODER+index_rows", round(best(idx), 3))
full = msgspec.json.Decoder(EndpointEvent).decode
print("EndpointEvent whole", round(best(lambda: list(map(full, vals))), 3))
class Skel(msgspec.Struct):
    ts: float = 0.0
print("skeleton struct (all ignored)", round(best(lambda: list(map(msgspec.json.Decoder(Skel).decode, vals))), 3))
print(vals[0][:900])
