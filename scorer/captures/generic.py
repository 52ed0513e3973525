"""Record-level readers shared by every format: JSON lines, JSON documents, CSV rows.

Each takes an ``adapt`` function (a parsed mapping -> canonical event, as in
:mod:`scorer.events`) and turns whatever that raises for one record into a ReadError, so a
bad record is reported with its file and line and reading goes on.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

import msgspec

from scorer.captures.base import MAX_RAW, Item, LabeledEvent, ReadError, kind_of_event, with_uid
from scorer.errors import RecordError
from scorer.events.structs import Event

Adapter = Callable[[Mapping[str, Any]], Event]

# What an adapter may raise for a record it cannot map: reported, never fatal.
RECORD_ERRORS = (RecordError, TypeError, ValueError, KeyError, AttributeError, OverflowError)


class Context(msgspec.Struct, frozen=True):
    """Where records come from: file path (for errors), capture name and uid prefix."""

    path: str
    capture: str
    capture_label: str | None = None


def adapt_one(
    ctx: Context, adapt: Adapter, raw: Any, line: int, original: bytes | None = None
) -> Item:
    """One parsed record -> LabeledEvent, or the ReadError saying why not."""
    if not isinstance(raw, dict):
        return ReadError(ctx.path, line, "wrong_type",
                         f"a record must be a JSON object, got {type(raw).__name__}",
                         _clip(original))
    try:
        event = adapt(raw)
    except RecordError as exc:
        return ReadError(ctx.path, line, exc.reason, str(exc), _clip(original))
    except RECORD_ERRORS as exc:
        return ReadError(ctx.path, line, "wrong_schema", f"{type(exc).__name__}: {exc}",
                         _clip(original))
    event = with_uid(event, f"{ctx.capture}:{line}")
    return LabeledEvent(kind_of_event(event), event, ctx.capture, line, ctx.capture_label)


def json_lines(ctx: Context, lines: Iterable[tuple[int, bytes]], adapt: Adapter) -> Iterator[Item]:
    decoder = msgspec.json.Decoder()
    for number, line in lines:
        try:
            raw = decoder.decode(line)
        except (msgspec.DecodeError, RecursionError) as exc:
            yield ReadError(ctx.path, number, "malformed_json", f"not valid JSON: {exc}",
                            _clip(line))
            continue
        except UnicodeDecodeError as exc:  # msgspec raises it for bad UTF-8 inside a string
            yield ReadError(ctx.path, number, "invalid_utf8", f"JSON string is not valid UTF-8: {exc}",
                            _clip(line))
            continue
        yield adapt_one(ctx, adapt, raw, number, line)


def json_documents(ctx: Context, text: str, adapt: Adapter) -> Iterator[Item]:
    """Concatenated (pretty-printed) JSON documents in one text, e.g. Sigma regression files.

    ``line`` is the line where each document starts. After a corrupt document, reading
    resumes at the next line that opens a new top-level object.
    """
    decoder = json.JSONDecoder()
    pos, size = 0, len(text)
    while True:
        while pos < size and text[pos].isspace():
            pos += 1
        if pos >= size:
            return
        line = text.count("\n", 0, pos) + 1
        try:
            raw, end = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError) as exc:
            nxt = text.find("\n{", pos + 1)
            end = size if nxt < 0 else nxt + 1
            yield ReadError(ctx.path, line, "malformed_json", f"not valid JSON: {exc}",
                            _clip(text[pos:end].encode()))
            pos = end
            continue
        yield adapt_one(ctx, adapt, raw, line)
        pos = end


def csv_rows(ctx: Context, fh: IO[str], adapt: Adapter) -> Iterator[Item]:
    """A CSV with a header row. A row with the wrong number of fields is a ReadError."""
    reader = csv.reader(fh)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return
    width = len(header)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield ReadError(ctx.path, reader.line_num, "malformed_csv", str(exc))
            continue
        if not row:
            continue
        if len(row) != width:
            yield ReadError(ctx.path, reader.line_num, "wrong_width",
                            f"{len(row)} fields, header has {width}",
                            _clip(",".join(row).encode()))
            continue
        yield adapt_one(ctx, adapt, dict(zip(header, row, strict=True)), reader.line_num)


def _clip(raw: bytes | None) -> bytes | None:
    return None if raw is None else raw[:MAX_RAW]
