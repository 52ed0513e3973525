"""The scorer's canonical capture format: JSON lines, one event per line.

Each line is ``{"kind": "netflow"|"edr"|"siem", "event": {...}}`` where ``event`` is the
canonical struct of that kind (:mod:`scorer.events.structs`) as JSON, i.e. exactly the value
a producer puts on ``events.<kind>``. Optional ``capture`` and ``capture_label`` keep the
provenance a replayed capture needs for evaluation. A file may mix kinds and may be
gzip-compressed (``.jsonl.gz``). The bundled demo capture and ``scorer record`` use it.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, cast

import msgspec

from scorer.captures.base import (
    MAX_RAW,
    Item,
    LabeledEvent,
    ReadError,
    kind_of_event,
    numbered_lines,
    open_binary,
    stem,
    with_uid,
)
from scorer.errors import RecordError
from scorer.events.decode import decode_mapping, parse_kind
from scorer.events.structs import Event, EventKind


class CanonicalLine(msgspec.Struct, omit_defaults=True):
    kind: str
    event: Any
    capture: str | None = None
    capture_label: str | None = None


def read_canonical(path: Path) -> Iterator[Item]:
    decoder = msgspec.json.Decoder(CanonicalLine)
    default_capture = stem(path)
    with open_binary(path) as fh:
        for number, line in numbered_lines(fh):
            yield _one(decoder, line, number, str(path), default_capture)


def _one(
    decoder: msgspec.json.Decoder[CanonicalLine], line: bytes, number: int, path: str,
    default_capture: str,
) -> Item:
    def error(reason: str, message: str) -> ReadError:
        return ReadError(path, number, reason, message, line[:MAX_RAW])

    try:
        record = decoder.decode(line)
    except msgspec.ValidationError as exc:
        return error("wrong_schema", f"not a canonical line: {exc}")
    except (msgspec.DecodeError, RecursionError) as exc:
        return error("malformed_json", f"not valid JSON: {exc}")
    except UnicodeDecodeError as exc:  # msgspec raises it for bad UTF-8 inside a string
        return error("invalid_utf8", f"JSON string is not valid UTF-8: {exc}")
    kind = parse_kind(record.kind)
    if kind is None:
        return error("unknown_kind", f"unknown event kind {record.kind!r}")
    if not isinstance(record.event, dict):
        return error("wrong_type", "'event' must be a JSON object")
    try:
        # The same decoding path the service uses for a Kafka value of this kind.
        event = decode_mapping(kind, record.event)
    except RecordError as exc:
        return error(exc.reason, str(exc))
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        return error("wrong_schema", f"{type(exc).__name__}: {exc}")
    capture = record.capture or default_capture
    event = with_uid(event, f"{capture}:{number}")
    return LabeledEvent(kind, event, capture, number, record.capture_label)


def _open_write(target: Path) -> IO[bytes]:
    if target.suffix == ".gz":
        return cast(IO[bytes], gzip.open(target, "wb"))
    return target.open("wb")


def first_kind(path: Path) -> EventKind | None:
    decoder = msgspec.json.Decoder(CanonicalLine)
    with open_binary(path) as fh:
        for _, line in numbered_lines(fh):
            try:
                return parse_kind(decoder.decode(line).kind)
            except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
                return None
    return None


def write_canonical(events: Iterable[LabeledEvent | Event], path: Path | str) -> int:
    """Write events as canonical JSON lines (gzip when the name ends in ``.gz``); count them."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    encoder = msgspec.json.Encoder()
    count = 0
    with _open_write(target) as fh:
        for item in events:
            if isinstance(item, LabeledEvent):
                line = CanonicalLine(str(item.kind), item.event, item.capture, item.capture_label)
            else:
                line = CanonicalLine(str(kind_of_event(item)), item)
            fh.write(encoder.encode(line) + b"\n")
            count += 1
    return count
