"""FieldMap (scorer/native/_fieldmap.c) against msgspec's dict[str, str] decode, over the realistic
stream's EDR ``fields`` objects (the bytes msgspec leaves as Raw); and the whole records decoded as
EndpointEvent against decoded with ``fields`` left Raw, then index_rows.

    python docs/results/s19/hfieldmap/bench_fieldmap.py              # CPU time, best of 7
    python docs/results/s19/hfieldmap/bench_fieldmap.py --callgrind  # instructions per record

The timing runs every mode over all records 7 times and keeps each mode's best (process CPU
time). --callgrind runs one pass of each mode under valgrind (one process each, the records
loaded from a pickle) and subtracts the pass that only walks the records: the instructions a
record costs, start-up and loading left out.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import msgspec

from scorer.events.structs import EndpointEvent
from scorer.native._fieldmap import FieldMap, index_rows

READ = ("TargetImage", "GrantedAccess", "SubjectUserName", "ObjectServer")  # 4.4k, 4.4k, 7.1k, 4.3k of 20k
DICT = msgspec.json.Decoder(dict[str, str])


class Row(EndpointEvent, frozen=True, kw_only=True, omit_defaults=True):
    fields: msgspec.Raw = msgspec.Raw(b"{}")  # type: ignore[assignment]


EVENTS = msgspec.json.Decoder(EndpointEvent)
ROWS = msgspec.json.Decoder(Row)


def stream(n_payloads: int) -> tuple[list[bytes], list[bytes]]:
    """The realistic stream's EDR records, and their ``fields`` objects."""
    from scorer.bench.loadgen import payloads, templates
    from scorer.bench.realistic import add_stream_arguments, stream_templates
    from scorer.demo import bundled_capture
    from scorer.events.structs import EventKind

    parser = argparse.ArgumentParser()
    add_stream_arguments(parser)
    tpl = stream_templates(parser.parse_args(["--stream", "realistic"]), templates(bundled_capture(), tuple(EventKind)))
    values = [v for k, _, v in payloads(tpl, n_payloads) if k == EventKind.EDR]

    class Wrapper(msgspec.Struct):
        fields: msgspec.Raw = msgspec.Raw(b"{}")

    return [bytes(msgspec.json.decode(v, type=Wrapper).fields) for v in values], values


def rows_indexed(records: list[bytes]) -> list[Row]:
    rows = list(map(ROWS.decode, records))
    index_rows(rows, msgspec.Raw)
    return rows


def read4(raws: list[bytes]) -> list[FieldMap]:
    a, b, c, d = READ
    out = []
    for r in raws:
        m = FieldMap(r)
        m.get(a), m.get(b), m.get(c), m.get(d)
        out.append(m)
    return out


def dict4(raws: list[bytes]) -> list[dict[str, str]]:
    a, b, c, d = READ
    out = []
    for r in raws:
        m = DICT.decode(r)
        m.get(a), m.get(b), m.get(c), m.get(d)
        out.append(m)
    return out


# Every mode keeps what it made until the pass ends, as the rows of a batch keep their fields.
MODES: dict[str, Callable[[list[bytes]], object]] = {
    "walk (baseline)": lambda raws: list(map(len, raws)),
    "msgspec dict[str, str]": lambda raws: list(map(DICT.decode, raws)),
    "msgspec dict + 4 gets": dict4,
    "FieldMap": lambda raws: list(map(FieldMap, raws)),
    "FieldMap + 4 gets": read4,
    "FieldMap + to_dict": lambda raws: [FieldMap(r).to_dict() for r in raws],
}
# The same over whole records (what the columnar decode does); the ratio's base is EndpointEvent.
RECORD_MODES: dict[str, Callable[[list[bytes]], object]] = {
    "EndpointEvent": lambda records: list(map(EVENTS.decode, records)),
    "Row (fields Raw)": lambda records: list(map(ROWS.decode, records)),
    "Row + index_rows": rows_indexed,
}


def timing(data: dict[str, list[bytes]]) -> None:
    for modes, key, base in ((MODES, "fields", "msgspec dict[str, str]"), (RECORD_MODES, "records", "EndpointEvent")):
        items = data[key]
        best = dict.fromkeys(modes, float("inf"))
        for _ in range(7):
            for name, run in modes.items():
                t = time.process_time()
                run(items)
                best[name] = min(best[name], time.process_time() - t)
        for name, s in best.items():
            print(f"{name:24s} {s / len(items) * 1e6:7.3f} us/record  {s / best[base]:5.2f}x")


def callgrind(data: dict[str, list[bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.pkl")
        with open(path, "wb") as f:
            pickle.dump(data, f)
        ir = {}
        for name in [*MODES, *RECORD_MODES]:
            out = os.path.join(tmp, "cg.out")
            proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                                   __file__, "--one", name, path], capture_output=True, text=True, check=True)
            ir[name] = int(re.search(r"Collected : (\d+)", proc.stderr).group(1))  # type: ignore[union-attr]
    walk = ir["walk (baseline)"]  # start-up and loading: the same in every mode's process
    for modes, key, base in ((MODES, "fields", "msgspec dict[str, str]"), (RECORD_MODES, "records", "EndpointEvent")):
        n = len(data[key])
        for name in modes:
            print(f"{name:24s} {(ir[name] - walk) / n:8.0f} instructions/record  "
                  f"{(ir[name] - walk) / (ir[base] - walk):5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payloads", type=int, default=60000, help="stream records made (EDR: ~1/3)")
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--one", nargs=2, metavar=("MODE", "PICKLE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with open(args.one[1], "rb") as f:
            data = pickle.load(f)
        name = args.one[0]
        MODES[name](data["fields"]) if name in MODES else RECORD_MODES[name](data["records"])
        return
    raws, records = stream(args.payloads)
    escaped = sum(b"\\" in r for r in raws)
    print(f"{len(raws)} EDR fields objects, {sum(map(len, raws)) / len(raws):.0f} bytes each on average, "
          f"{escaped} with escapes, {sum(max(r) > 127 for r in raws)} with non-ASCII")
    data = {"fields": raws, "records": records}
    callgrind(data) if args.callgrind else timing(data)


if __name__ == "__main__":
    main()
