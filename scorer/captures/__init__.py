"""Reading captures (Zeek, CICFlowMeter, OTRF, Event XML, EVTX, AIT-ADS, canonical JSON lines, recorded topics).

Supported (detected from the name and the first bytes; ``.gz`` is unpacked transparently):

========================  =========  ==================================================
format                    kind       recognised by
========================  =========  ==================================================
Zeek conn.log TSV         netflow    ``#separator`` / ``#fields`` header (``.labeled``
                                     Stratosphere files carry label/detailedlabel)
Zeek conn.log JSON lines  netflow    first object has ``id.orig_h``
CICFlowMeter CSV          netflow    header has ``Src IP``
OTRF/Mordor JSON lines    edr        a zip of ``.json`` members, or lines with ``EventID``
Event XML as JSON         edr        objects with ``Event`` (several may be concatenated)
Windows EVTX              edr        ``ElfFile`` magic (parsed by the ``evtx`` package)
AIT-ADS alert CSV         siem       header ``time,name,...,short``
Wazuh/Suricata JSON       siem       lines with ``rule`` / ``alert`` objects
canonical JSON lines      any        lines ``{"kind": ..., "event": {...}}``
``scorer record`` dump    any        lines ``{"topic", "partition", "offset", ...}``
========================  =========  ==================================================

:func:`capture_files` finds the captures: a directory is read file by file in sorted order
(metadata files are skipped). It recognises ``scorer record`` dumps there too, but those
hold Kafka records, not labelled events: :mod:`replay.outgoing` reads them and
:mod:`replay.player` replays them record for record, and :func:`iter_capture` reports them
as ``recorded_dump``.
"""

from __future__ import annotations

import enum
import typing
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from scorer.captures import evtx, formats
from scorer.captures.base import (
    Item,
    LabeledEvent,
    ReadError,
    head_bytes,
    is_malicious,
    numbered_lines,
    open_binary,
    stem,
)
from scorer.captures.canonical import first_kind, read_canonical, write_canonical
from scorer.captures.generic import Context, json_lines
from scorer.captures.recorded import is_record_line
from scorer.events import siem
from scorer.events.structs import EventKind


class CaptureFormat(enum.StrEnum):
    ZEEK_TSV = "zeek-tsv"
    ZEEK_JSON = "zeek-json"
    CICFLOWMETER_CSV = "cicflowmeter-csv"
    OTRF_JSON = "otrf-json"
    EVENT_XML_JSON = "event-xml-json"
    AIT_CSV = "ait-csv"
    SIEM_JSON = "siem-json"
    CANONICAL = "canonical"
    EVTX = "evtx"
    RECORD = "record"


_KIND = {
    CaptureFormat.ZEEK_TSV: EventKind.NETFLOW,
    CaptureFormat.ZEEK_JSON: EventKind.NETFLOW,
    CaptureFormat.CICFLOWMETER_CSV: EventKind.NETFLOW,
    CaptureFormat.OTRF_JSON: EventKind.EDR,
    CaptureFormat.EVENT_XML_JSON: EventKind.EDR,
    CaptureFormat.EVTX: EventKind.EDR,
    CaptureFormat.AIT_CSV: EventKind.SIEM,
    CaptureFormat.SIEM_JSON: EventKind.SIEM,
}
_SKIP_SUFFIXES = {".yml", ".yaml", ".md", ".txt", ".py"}


def _siem_json(path: Path) -> Iterator[Item]:
    with open_binary(path) as fh:
        yield from json_lines(Context(str(path), stem(path)), numbered_lines(fh),
                              siem.from_mapping)


_READERS: dict[CaptureFormat, Callable[[Path], Iterator[Item]]] = {
    CaptureFormat.ZEEK_TSV: formats.zeek_tsv,
    CaptureFormat.ZEEK_JSON: formats.zeek_json,
    CaptureFormat.CICFLOWMETER_CSV: formats.cicflowmeter_csv,
    CaptureFormat.OTRF_JSON: formats.otrf_lines,
    CaptureFormat.EVENT_XML_JSON: formats.event_xml_json,
    CaptureFormat.AIT_CSV: formats.ait_csv,
    CaptureFormat.SIEM_JSON: _siem_json,
    CaptureFormat.CANONICAL: read_canonical,
    CaptureFormat.EVTX: evtx.evtx_file,
}


def detect_format(path: Path | str) -> CaptureFormat:
    """The capture format of a file; raises ValueError when it is none of the supported."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        return CaptureFormat.OTRF_JSON
    if head_bytes(path, len(evtx.MAGIC)) == evtx.MAGIC:
        return CaptureFormat.EVTX
    head = head_bytes(path, 65536).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"#"):
        return CaptureFormat.ZEEK_TSV
    if head.startswith((b"{", b"[")):
        return _detect_json(path, head)
    header = head.split(b"\n", 1)[0].decode("utf-8", "replace")
    columns = {c.strip().strip('"') for c in header.split(",")}
    if "Src IP" in columns:
        return CaptureFormat.CICFLOWMETER_CSV
    if {"time", "name", "short"} <= columns:
        return CaptureFormat.AIT_CSV
    raise ValueError(f"{path}: not a supported capture format")


def _detect_json(path: Path, head: bytes) -> CaptureFormat:
    try:
        first = msgspec.json.decode(head.split(b"\n", 1)[0])
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        first = None  # a pretty-printed document spans several lines (or the line is damaged)
    if not isinstance(first, dict):
        if b'"Event"' in head[:2048]:
            return CaptureFormat.EVENT_XML_JSON
        raise ValueError(f"{path}: JSON, but not a supported capture format")
    if is_record_line(first):
        return CaptureFormat.RECORD
    if "kind" in first and "event" in first:
        return CaptureFormat.CANONICAL
    if "Event" in first:
        return CaptureFormat.EVENT_XML_JSON
    if "id.orig_h" in first:
        return CaptureFormat.ZEEK_JSON
    if "EventID" in first or "SourceName" in first:
        return CaptureFormat.OTRF_JSON
    if "rule" in first or "alert" in first:
        return CaptureFormat.SIEM_JSON
    raise ValueError(f"{path}: JSON lines, but not a supported capture format")


def kind_of(path: Path | str) -> EventKind:
    """The event kind a capture holds (a canonical file: the kind of its first record)."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt is CaptureFormat.RECORD:
        raise ValueError(f"{path}: a `scorer record` dump may hold records of any kind")
    if fmt is CaptureFormat.CANONICAL:
        kind = first_kind(path)
        if kind is None:
            raise ValueError(f"{path}: first canonical line has no known kind")
        return kind
    return _KIND[fmt]


class CaptureFile(typing.NamedTuple):
    path: Path
    format: CaptureFormat


def capture_files(path: Path | str) -> Iterator[CaptureFile | ReadError]:
    """The capture file at ``path``, or every capture file under it (sorted), with its
    format; what is missing or of no supported format is a file-level ReadError (line 0)."""
    path = Path(path)
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            if child.suffix.lower() in _SKIP_SUFFIXES or child.name.startswith("."):
                continue
            yield from capture_files(child)
        return
    if not path.exists():
        yield ReadError(str(path), 0, "not_found", "no such file or folder")
        return
    try:
        yield CaptureFile(path, detect_format(path))
    except (ValueError, *_CONTAINER_ERRORS) as exc:
        yield ReadError(str(path), 0, "unknown_format", f"{type(exc).__name__}: {exc}")


def read_capture(found: CaptureFile) -> Iterator[LabeledEvent | ReadError]:
    """Every record of one capture file, in file order."""
    path = found.path
    if found.format is CaptureFormat.RECORD:
        yield ReadError(str(path), 0, "recorded_dump",
                        "a `scorer record` dump holds Kafka records, not labelled events: "
                        "replay it with `scorer replay`")
        return
    line = 0
    try:
        for item in _READERS[found.format](path):
            line = item.line
            yield item
    except _CONTAINER_ERRORS as exc:
        # The file itself broke mid-read (truncated gzip, damaged zip, I/O error): what was
        # read stands, the rest of this file is one error, and the next file is still read.
        yield ReadError(str(path), line + 1, "unreadable", f"reading stopped: {type(exc).__name__}: {exc}")


def iter_capture(path: Path | str) -> Iterator[LabeledEvent | ReadError]:
    """Every record of a capture file (or of every capture file under a directory)."""
    for found in capture_files(path):
        if isinstance(found, ReadError):
            yield found
        else:
            yield from read_capture(found)


# What a damaged container raises while its records are read (not a per-record problem):
# I/O and truncated gzip (OSError, EOFError), broken zip or deflate data, and zipfile's own
# member-level refusals (a member name that is not UTF-8, an unsupported compression
# method, an encrypted member: UnicodeDecodeError, NotImplementedError, RuntimeError).
_CONTAINER_ERRORS = (
    OSError, EOFError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError, NotImplementedError, RuntimeError,
)


__all__ = [
    "CaptureFile",
    "CaptureFormat",
    "LabeledEvent",
    "ReadError",
    "capture_files",
    "detect_format",
    "is_malicious",
    "iter_capture",
    "kind_of",
    "read_capture",
    "write_canonical",
]
