"""FieldMap (scorer/native/_fieldmap.c) against msgspec's dict[str, str] decode, over the realistic
stream's EDR ``fields`` objects (the bytes msgspec leaves as Raw).

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

from scorer.native._fieldmap import FieldMap

READ = ("TargetImage", "GrantedAccess", "SubjectUserName", "ObjectServer")  # 4.4k, 4.4k, 7.1k, 4.3k of 20k
DICT = msgspec.json.Decoder(dict[str, str])


def stream_fields(n_payloads: int) -> list[bytes]:
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

    return [bytes(msgspec.json.decode(v, type=Wrapper).fields) for v in values]


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


def timing(raws: list[bytes]) -> None:
    best = dict.fromkeys(MODES, float("inf"))
    for _ in range(7):
        for name, run in MODES.items():
            t = time.process_time()
            run(raws)
            best[name] = min(best[name], time.process_time() - t)
    base = best["msgspec dict[str, str]"]
    for name, s in best.items():
        print(f"{name:24s} {s / len(raws) * 1e6:7.3f} us/record  {s / base:5.2f}x")


def callgrind(raws: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "raws.pkl")
        with open(path, "wb") as f:
            pickle.dump(raws, f)
        ir = {}
        for name in MODES:
            out = os.path.join(tmp, "cg.out")
            proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                                   __file__, "--one", name, path], capture_output=True, text=True, check=True)
            ir[name] = int(re.search(r"Collected : (\d+)", proc.stderr).group(1))  # type: ignore[union-attr]
    base = ir["walk (baseline)"]
    ref = ir["msgspec dict[str, str]"] - base
    for name, n in ir.items():
        print(f"{name:24s} {(n - base) / len(raws):8.0f} instructions/record  {(n - base) / ref:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payloads", type=int, default=60000, help="stream records made (EDR: ~1/3)")
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--one", nargs=2, metavar=("MODE", "PICKLE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with open(args.one[1], "rb") as f:
            MODES[args.one[0]](pickle.load(f))
        return
    raws = stream_fields(args.payloads)
    escaped = sum(b"\\" in r for r in raws)
    print(f"{len(raws)} EDR fields objects, {sum(map(len, raws)) / len(raws):.0f} bytes each on average, "
          f"{escaped} with escapes, {sum(max(r) > 127 for r in raws)} with non-ASCII")
    callgrind(raws) if args.callgrind else timing(raws)


if __name__ == "__main__":
    main()
