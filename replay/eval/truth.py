"""The ground-truth sidecar (``truth.jsonl``) that replay writes and eval reads.

One line per replayed event: its uid (what alerts and scores link to), kind, the source's
label and what it means (``malicious`` is None when the truth is unknown, e.g. Stratosphere
Background), the capture and its weak capture-level label, the capture timestamp and, when
replayed through Kafka, where the event landed and when it was produced (for latency).
Evaluation therefore never needs the captures or the training data again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import msgspec

from scorer.captures import LabeledEvent


class TruthRow(msgspec.Struct, omit_defaults=True):
    uid: str
    kind: str
    label: str | None
    malicious: bool | None
    capture: str
    capture_label: str | None
    ts: float
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    produced_ms: int | None = None  # Kafka timestamp of the produced event record
    produced_ts_type: int | None = None  # of produced_ms: 0 CreateTime, 1 LogAppendTime


def truth_row(item: LabeledEvent, **where: str | int | None) -> TruthRow:
    return TruthRow(
        item.event.uid,
        item.kind.value,
        item.label,
        item.malicious,
        item.capture,
        item.capture_label,
        item.event.ts,
        **where,  # type: ignore[arg-type]
    )


class TruthWriter:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh = path.open("wb")
        self._encoder = msgspec.json.Encoder()
        self.rows = 0

    def write(self, row: TruthRow) -> None:
        self._fh.write(self._encoder.encode(row) + b"\n")
        self.rows += 1

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> TruthWriter:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


def read_truth(path: Path) -> Iterator[TruthRow]:
    decoder = msgspec.json.Decoder(TruthRow)
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                yield decoder.decode(line)
