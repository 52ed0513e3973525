"""What a replay sends, in what order: capture events and recorded records as :class:`Outgoing`.

Order is the order of the inputs: captures in the order given (a directory in sorted
order), each in file order; the player (:mod:`replay.player`) only decides *when* each item
goes. Apart from it because reading the inputs, naming their captures and keeping their uids
unique across the replay are the same whatever the pacing and wherever the items go.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import msgspec

from scorer.captures import (
    CaptureFile,
    CaptureFormat,
    LabeledEvent,
    ReadError,
    capture_files,
    read_capture,
)
from scorer.captures.base import stem
from scorer.captures.recorded import read_envelopes
from scorer.events.structs import EventKind, entity_key


class Outgoing(msgspec.Struct, frozen=True):
    """One record to replay: a capture event (with its truth) or a recorded Kafka record."""

    ts: float  # capture time in seconds: drives as-recorded pacing
    capture: str
    key: bytes | None
    value: bytes | None  # None: a recorded tombstone, replayed as one
    kind: EventKind | None = None
    labeled: LabeledEvent | None = None
    topic: str | None = None  # recorded records: where they were, to write them back there
    partition: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    renamed_uid: bool = False  # the source uid was already taken by an earlier event


def capture_items(
    paths: Sequence[Path], kind_of_topic: Mapping[str, EventKind] | None = None
) -> Iterator[Outgoing | ReadError]:
    """Every event of every capture, and every record of every ``scorer record`` dump
    (wherever discovery finds one, inside a folder too), in input order.

    A capture's event goes on ``events.<kind>`` as the canonical event *without* its label:
    the scorer under evaluation sees what production would; ground truth travels in the
    truth sidecar. Alerts and truth are joined by uid, so a uid some earlier event of the
    replay already has (e.g. CIC flow ids restart in every class file) becomes
    ``<capture>:<line>``, deterministically, and is counted in the summary.

    Captures are named by their path relative to the common root of ``paths`` (see
    :func:`capture_key`): two files of the same name in different folders stay apart.
    """
    root = common_root(paths)
    seen: set[str] = set()
    claimed: dict[str, Path] = {}
    for path in paths:
        for found in capture_files(path):
            if isinstance(found, ReadError):
                yield found
            elif found.format is CaptureFormat.RECORD:
                key = _claim(claimed, root, found.path, stem(found.path))
                yield from recorded_items(found.path, kind_of_topic or {}, key)
            else:
                yield from _events(found, root, seen, claimed)


def common_root(paths: Iterable[Path]) -> Path:
    """The deepest folder that holds every input (a folder input counts as itself)."""
    dirs = [str(p.resolve() if p.is_dir() else p.resolve().parent) for p in paths]
    return Path(os.path.commonpath(dirs)) if dirs else Path.cwd()


def capture_key(root: Path, path: Path, capture: str) -> str:
    """``capture`` (the reader's name: file stem, or stem/member of a zip) prefixed by the
    file's folder relative to ``root``: short, and unique across the replayed inputs."""
    folder = path.resolve().parent.relative_to(root)
    return capture if folder == Path(".") else f"{folder.as_posix()}/{capture}"


def _claim(claimed: dict[str, Path], root: Path, path: Path, capture: str) -> str:
    """The capture key of ``capture`` read from ``path``; a key another file already holds
    (``a.csv`` and ``a.csv.gz`` side by side share a stem) names the whole file instead."""
    key = capture_key(root, path, capture)
    named_by_file = capture == stem(path) or capture.startswith(stem(path) + "/")
    # Canonical lines may carry their own capture name, shared on purpose across files.
    if claimed.setdefault(key, path) != path and named_by_file:
        key = capture_key(root, path, path.name + capture[len(stem(path)):])
        claimed.setdefault(key, path)
    return key


def _events(
    found: CaptureFile, root: Path, seen: set[str], claimed: dict[str, Path]
) -> Iterator[Outgoing | ReadError]:
    encoder = msgspec.json.Encoder()
    keys: dict[str, str] = {}
    for item in read_capture(found):
        if isinstance(item, ReadError):
            yield item
            continue
        if item.capture not in keys:
            keys[item.capture] = _claim(claimed, root, found.path, item.capture)
        item = msgspec.structs.replace(item, capture=keys[item.capture])
        renamed = item.event.uid in seen
        if renamed:
            uid = f"{item.capture}:{item.line}"
            while uid in seen:
                uid += "'"
            item = msgspec.structs.replace(item, event=msgspec.structs.replace(item.event, uid=uid))
        seen.add(item.event.uid)
        event = msgspec.structs.replace(item.event, label=None)
        yield Outgoing(
            item.event.ts,
            item.capture,
            entity_key(event).encode(),
            encoder.encode(event),
            item.kind,
            item,
            renamed_uid=renamed,
        )


def recorded_items(
    path: Path, kind_of_topic: Mapping[str, EventKind], capture: str | None = None
) -> Iterator[Outgoing | ReadError]:
    """A dump's records as replay items, to their recorded topic and partition; tombstones
    stay tombstones, so a compacted topic round-trips."""
    for env in read_envelopes(path):
        if isinstance(env, ReadError):
            yield env
            continue
        yield Outgoing(
            env.timestamp / 1000,
            capture or stem(path),
            env.key,
            env.value,
            kind_of_topic.get(env.topic),
            topic=env.topic,
            partition=env.partition,
            headers=tuple(env.headers),
        )
