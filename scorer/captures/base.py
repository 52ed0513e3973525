"""Shared pieces of the capture readers: the two values they yield, and file helpers.

Every reader yields, per record, either a :class:`LabeledEvent` (a canonical event plus the
ground truth and provenance that evaluation and training need) or a :class:`ReadError`
(which file, which line, why) and then carries on with the next record: one corrupt line
never costs the rest of a capture.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

import msgspec

from scorer.events.structs import EndpointEvent, Event, EventKind, FlowRecord, SiemAlert

MAX_RAW = 4096  # bytes of a bad line kept in its ReadError (enough to dead-letter/inspect)


class LabeledEvent(msgspec.Struct, frozen=True):
    """One event read from a capture.

    ``capture`` names the capture it came from (the file stem, or the zip member): it is the
    group key for evaluation splits. ``line`` is the 1-based line (or document) number.
    ``capture_label`` is a weak, capture-level label (e.g. ``"attack:T1222.001"`` for an
    OTRF atomic capture) for sources that have no per-event truth; ``event.label`` is the
    per-event truth when the source has one.
    """

    kind: EventKind
    event: Event
    capture: str
    line: int
    capture_label: str | None = None

    @property
    def label(self) -> str | None:
        return self.event.label

    @property
    def malicious(self) -> bool | None:
        return is_malicious(self.event.label)


class ReadError(msgspec.Struct, frozen=True):
    """A record that could not be read, with enough context to find and fix it."""

    path: str
    line: int
    reason: str
    message: str
    raw: bytes | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}: {self.message}"


Item = LabeledEvent | ReadError

_BENIGN = ("benign", "normal", "false_positive")
_UNKNOWN = ("background", "unknown", "-")


def is_malicious(label: str | None) -> bool | None:
    """Ground truth of a source label: True/False, or None when unknown.

    Zeek/Stratosphere ``Malicious:...``/``Benign:...``/``Background:...`` (background is
    unknown, not benign), CIC ``BENIGN``/attack class, AIT ``benign``/attack step, Sigma
    ``malicious:<rule>``.
    """
    if not label:
        return None
    head = label.split(":", 1)[0].strip().lower()
    if head in _UNKNOWN:
        return None
    return head not in _BENIGN


def kind_of_event(event: Event) -> EventKind:
    if isinstance(event, FlowRecord):
        return EventKind.NETFLOW
    if isinstance(event, EndpointEvent):
        return EventKind.EDR
    if isinstance(event, SiemAlert):
        return EventKind.SIEM
    raise TypeError(f"not an event: {type(event).__name__}")


def stem(path: Path | str) -> str:
    """File name without any of its suffixes: ``008-conn.log.labeled`` -> ``008-conn``."""
    name = Path(path).name
    return name.split(".", 1)[0] if not name.startswith(".") else name


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, transparently gunzipped when it is gzip-compressed."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def open_text(path: Path) -> IO[str]:
    # Undecodable bytes become U+FFFD instead of aborting the whole capture mid-read.
    return io.TextIOWrapper(open_binary(path), encoding="utf-8", errors="replace", newline="")


def head_bytes(path: Path, size: int = 8192) -> bytes:
    with open_binary(path) as fh:
        return fh.read(size)


def with_uid(event: Event, uid: str) -> Event:
    """The event with a deterministic uid when the source gave none."""
    return event if event.uid else msgspec.structs.replace(event, uid=uid)


def numbered_lines(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, stripped line) for every non-blank line."""
    for number, line in enumerate(fh, start=1):
        line = line.strip()
        if line:
            yield number, line
