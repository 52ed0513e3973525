"""One reader per capture format. Each yields LabeledEvent | ReadError in file order."""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import msgspec
import yaml

from scorer.captures.base import Item, ReadError, numbered_lines, open_binary, open_text, stem
from scorer.captures.generic import (
    Adapter,
    Context,
    adapt_one,
    csv_rows,
    json_documents,
    json_lines,
)
from scorer.events import edr, netflow, siem
from scorer.events.structs import EndpointEvent


def zeek_tsv(path: Path) -> Iterator[Item]:
    """Zeek ASCII logs: ``#fields`` names the tab-separated columns; ``-`` is unset."""
    ctx = Context(str(path), stem(path))
    fields: list[str] = []
    with open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            if line.startswith("#"):
                if line.startswith("#fields"):
                    fields = line.split("\t")[1:]
                continue
            values = line.split("\t")
            if len(values) == len(fields) - 2 and "   " in values[-1]:
                # Some Stratosphere releases separate the label columns with spaces.
                values = values[:-1] + values[-1].split()
            if not fields or len(values) != len(fields):
                yield ReadError(ctx.path, number, "wrong_width",
                                f"{len(values)} fields, #fields has {len(fields)}",
                                line.encode()[:4096])
                continue
            row = dict(zip(fields, values, strict=True))
            yield adapt_one(ctx, netflow.from_zeek, row, number, line.encode())


def zeek_json(path: Path) -> Iterator[Item]:
    with open_binary(path) as fh:
        yield from json_lines(Context(str(path), stem(path)), numbered_lines(fh), netflow.from_zeek)


def cicflowmeter_csv(path: Path) -> Iterator[Item]:
    with open_text(path) as fh:
        yield from csv_rows(Context(str(path), stem(path)), fh, netflow.from_cicflowmeter)


def ait_csv(path: Path) -> Iterator[Item]:
    with open_text(path) as fh:
        yield from csv_rows(Context(str(path), stem(path)), fh, siem.from_ait)


def otrf_lines(path: Path) -> Iterator[Item]:
    """OTRF/Mordor JSON lines, plain or zipped (every ``.json`` member of the zip).

    OTRF has no per-event truth: each event carries the capture's ATT&CK technique as
    ``capture_label`` when the dataset's ``_metadata`` folder is found above the file.
    """
    label = _otrf_capture_label(path)
    if not zipfile.is_zipfile(path):
        with open_binary(path) as fh:
            yield from json_lines(Context(str(path), stem(path), label), numbered_lines(fh),
                                  edr.from_otrf)
        return
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.namelist() if _is_data_member(m)]
        for member in sorted(members):
            capture = stem(path) if len(members) == 1 else f"{stem(path)}/{stem(member)}"
            ctx = Context(f"{path}!{member}", capture, label)
            with archive.open(member) as fh:
                yield from json_lines(ctx, numbered_lines(fh), edr.from_otrf)


def event_xml_json(path: Path) -> Iterator[Item]:
    """Event XML rendered as JSON; a file may hold several concatenated documents.

    Sigma regression events are true positives of the rule next to them: each event is
    labelled ``malicious:<rule title>`` when the folder has the rule's ``info.yml``.
    """
    label = _sigma_label(path)
    ctx = Context(str(path), stem(path))
    with open_text(path) as fh:
        text = fh.read()
    yield from json_documents(ctx, text, _xml_adapter(label))


def _xml_adapter(label: str | None) -> Adapter:
    def adapt(raw: Mapping[str, Any]) -> EndpointEvent:
        if not isinstance(raw.get("Event"), dict):
            return edr.from_mapping(raw)
        event = edr.from_event_xml(raw, source="sigma-regression" if label else "evtx")
        if label and event.label is None:
            event = msgspec.structs.replace(event, label=label)
        return event

    return adapt


def _is_data_member(name: str) -> bool:
    pure = PurePosixPath(name)
    if "__MACOSX" in pure.parts or pure.name.startswith("."):
        return False
    return pure.suffix.lower() in {".json", ".jsonl", ".log", ".txt"}


def _sigma_label(path: Path) -> str | None:
    info = path.parent / "info.yml"
    if not info.is_file():
        return None
    try:
        data = yaml.safe_load(info.read_text(encoding="utf-8", errors="replace"))
        title = data["rule_metadata"][0]["title"]
    except (yaml.YAMLError, KeyError, IndexError, TypeError, OSError):
        return "malicious:sigma"
    return f"malicious:{title}"


def _otrf_capture_label(path: Path) -> str | None:
    for parent in list(path.resolve().parents)[:5]:
        meta = parent / "_metadata"
        if meta.is_dir():
            return _otrf_index(str(meta)).get(path.name)
    return None


@functools.lru_cache(maxsize=8)
def _otrf_index(meta_dir: str) -> dict[str, str]:
    """Zip file name -> ``attack:<technique>[.<sub>]`` from OTRF's SDWIN-*.yaml files."""
    index: dict[str, str] = {}
    for meta in sorted(Path(meta_dir).glob("*.yaml")):
        try:
            data = yaml.safe_load(meta.read_text(encoding="utf-8", errors="replace"))
        except (yaml.YAMLError, OSError):
            continue
        if not isinstance(data, dict):
            continue
        technique = "unknown"
        for mapping in data.get("attack_mappings") or []:
            if isinstance(mapping, dict) and mapping.get("technique"):
                sub = mapping.get("sub-technique")
                technique = f"{mapping['technique']}.{sub}" if sub else str(mapping["technique"])
                break
        for entry in data.get("files") or []:
            link = entry.get("link") if isinstance(entry, dict) else None
            if link and str(entry.get("type", "")).lower() == "host":
                index.setdefault(PurePosixPath(str(link)).name, f"attack:{technique}")
    return index
