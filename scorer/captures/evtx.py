"""Windows EVTX files, parsed by the ``evtx`` package (Rust ``evtx`` crate, no Windows needed).

Each record comes out as the same Event-XML-as-JSON document the Sigma regression files
hold (``{"Event": {"System": ..., "EventData": ...}}``), so it goes through the very adapter
those use (:func:`scorer.captures.formats._xml_adapter`); an ``info.yml`` next to the file
labels its events as the true positives of that Sigma rule, as for the JSON form.
``line`` is the 1-based record number in the file.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scorer.captures import formats
from scorer.captures.base import Item, ReadError, stem
from scorer.captures.generic import Context, adapt_one

MAGIC = b"ElfFile\x00"


def evtx_file(path: Path) -> Iterator[Item]:
    try:
        from evtx import PyEvtxParser
    except ImportError:
        yield ReadError(
            str(path),
            0,
            "unsupported_format",
            "EVTX needs the 'evtx' package: pip install 'scorer[replay]'",
        )
        return
    ctx = Context(str(path), stem(path))
    adapt = formats._xml_adapter(formats._sigma_label(path))
    try:
        # skip_errors: a damaged chunk becomes a warning (caught below), not the end of the file.
        records = iter(PyEvtxParser(str(path), skip_errors=True).records_json())
    except (RuntimeError, OSError) as exc:
        yield ReadError(ctx.path, 0, "malformed_evtx", str(exc))
        return
    number = 0
    while True:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                record: dict[str, Any] | None = next(records)
            except StopIteration:
                record = None
            except RuntimeError as exc:  # unrecoverable: report it and stop this file only
                yield ReadError(ctx.path, number + 1, "malformed_evtx", str(exc))
                return
        for warning in caught:
            yield ReadError(ctx.path, number + 1, "malformed_evtx", str(warning.message))
        if record is None:
            return
        number += 1
        try:
            raw = json.loads(record["data"])
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            yield ReadError(ctx.path, number, "malformed_json", f"record data: {exc}")
            continue
        yield adapt_one(ctx, adapt, raw, number)
