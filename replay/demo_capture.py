"""Build the small, attributed capture bundled for ``scorer demo``.

    python -m replay.demo_capture [--data ../shared/data] [--out scorer/data/demo_capture.jsonl.gz]

Only sources whose licences allow a small attributed sample are used (DATA_LICENSES.md):
CIC-IDS2017 (improved) flows, OTRF atomic captures (MIT), Sigma regression events (DRL 1.1)
and AIT-ADS alerts (CC BY 4.0). Stratosphere (GPL-2.0) is deliberately left out.
Deterministic: same data in, same bytes out (gzip mtime pinned).
"""

from __future__ import annotations

import argparse
import gzip
import io
import itertools
import random
from collections.abc import Iterator
from pathlib import Path

import msgspec

from scorer.captures import iter_capture
from scorer.captures.base import LabeledEvent
from scorer.captures.canonical import CanonicalLine
from scorer.config import data_dir
from scorer.events.structs import EventKind

PER_CIC_FILE = 100
CIC_BENIGN = 1000  # CIC's sample is class-balanced; the demo should not look like one
OTRF_CAPTURES = 8
PER_OTRF_CAPTURE = 250
AIT_SCENARIO = "wardbeck_alerts.csv.gz"
AIT_ATTACK, AIT_OTHER = 700, 1500


def _labeled(path: Path) -> Iterator[LabeledEvent]:
    return (it for it in iter_capture(path) if isinstance(it, LabeledEvent))


def _sample(items: list[LabeledEvent], n: int, rng: random.Random) -> list[LabeledEvent]:
    return items if len(items) <= n else sorted(rng.sample(items, n), key=lambda it: it.line)


def netflow(data: Path, rng: random.Random) -> list[LabeledEvent]:
    out: list[LabeledEvent] = []
    for csv in sorted((data / "netflow" / "cic-ids2017-improved").glob("*.csv")):
        n = CIC_BENIGN if csv.name.startswith("BENIGN") else PER_CIC_FILE
        out += _sample(list(_labeled(csv)), n, rng)
    return sorted(out, key=lambda it: it.event.ts)


def edr(data: Path, rng: random.Random) -> list[LabeledEvent]:
    root = data / "edr"
    zips = sorted((root / "otrf-security-datasets" / "windows").rglob("*.zip"))
    out: list[LabeledEvent] = []
    for z in sorted(rng.sample(zips, min(OTRF_CAPTURES, len(zips)))):
        out += list(itertools.islice(_labeled(z), PER_OTRF_CAPTURE))
    for doc in sorted((root / "sigma-regression").rglob("*.json")):
        out += list(_labeled(doc))
    return out


def siem(data: Path, rng: random.Random) -> list[LabeledEvent]:
    items = list(_labeled(data / "siem" / "ait-ads" / AIT_SCENARIO))
    attack = [it for it in items if it.malicious]
    other = [it for it in items if not it.malicious]
    return sorted(_sample(attack, AIT_ATTACK, rng) + _sample(other, AIT_OTHER, rng), key=lambda it: it.event.ts)


def build(data: Path, out: Path, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    kinds = {EventKind.NETFLOW: netflow(data, rng), EventKind.EDR: edr(data, rng), EventKind.SIEM: siem(data, rng)}
    enc = msgspec.json.Encoder()
    buf = io.BytesIO()
    # Round-robin over kinds keeps each kind in its own time order, as on its own topic.
    for group in itertools.zip_longest(*kinds.values()):
        for it in group:
            if it is not None:
                buf.write(enc.encode(CanonicalLine(str(it.kind), it.event, it.capture, it.capture_label)) + b"\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(buf.getvalue())
    return {k.value: len(v) for k, v in kinds.items()}


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, default=data_dir())
    p.add_argument("--out", type=Path, default=here / "scorer" / "data" / "demo_capture.jsonl.gz")
    args = p.parse_args()
    print(build(args.data, args.out), args.out, args.out.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
