"""Coverage-guided fuzzing (atheris/libFuzzer) of the event decoder and the capture readers.

    python tests/fuzz/atheris_harness.py CORPUS_DIR -runs=1000000 -artifact_prefix=out/fuzz/

The first input byte picks the target: even = EventDecoder.decode for the kind given by the
second byte (or no kind), odd = iter_capture on a file whose suffix the second byte picks.
Any exception, a decoder answer that is neither an event of the asked kind nor a
DecodeFailure, or a reader item that is neither LabeledEvent nor ReadError is a crash
(libFuzzer writes the input to ``<artifact_prefix>crash-*``). tests/fuzz/test_atheris.py
runs it for a bounded time with real samples as the seed corpus. ``SCORER_ATHERIS_WORKDIR``: the
folder the reader targets write their file in (default: a new temporary one, left behind).
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from scorer.captures import iter_capture
    from scorer.captures.base import LabeledEvent, ReadError
    from scorer.events.decode import DecodeFailure, EventDecoder
    from scorer.events.structs import STRUCT_OF_KIND, EventKind, SourceRef

KINDS: list[EventKind | None] = [None, *EventKind]
SUFFIXES = [".log", ".csv", ".jsonl", ".json", ".jsonl.gz", ".zip", ".evtx"]
DECODER = EventDecoder()
REF = SourceRef("fuzz", 0, 0)


@functools.cache
def workdir() -> Path:
    """Where the reader targets write their file: libFuzzer ends the process with exit(), past any
    Python clean-up, so the caller names a folder it removes (the test: its tmp_path). Made at the
    first reader input, not at import: pytest's --doctest-modules imports this module in every
    test process (each left an empty folder in /tmp)."""
    return Path(os.environ.get("SCORER_ATHERIS_WORKDIR") or tempfile.mkdtemp(prefix="scorer-atheris-"))


def one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    target, pick, body = data[0], data[1], data[2:]
    if target % 2 == 0:
        kind = KINDS[pick % len(KINDS)]
        out = DECODER.decode(kind, body, REF)
        if not isinstance(out, DecodeFailure):
            assert kind is not None and isinstance(out, STRUCT_OF_KIND[kind]), out
        return
    path = workdir() / f"capture{SUFFIXES[pick % len(SUFFIXES)]}"
    path.write_bytes(body)
    for item in iter_capture(path):
        assert isinstance(item, LabeledEvent | ReadError), item


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
