"""What a partition's :class:`~scorer.incidents.episodes.Correlator` writes to its changelog,
so that a restart restores exactly its state, and how it is read back.

Three kinds of record, in the partition numbered as the correlator's input partition:

- key = the correlation key: the open episode's :class:`IncidentState` (a tombstone once
  closed), without its ``first`` sample once that is complete: it never changes again, and
  is half of a state's bytes, written with every batch that feeds the episode otherwise;
- key = :data:`FIRST` + the correlation key + ``\x00`` + the incident uid: that complete
  ``first`` sample, written once (a tombstone once the episode closed; the uid tells one
  episode of a key from the next);
- key = :data:`RECENT` + the input offset of its first uid: the finding uids remembered in
  one batch (``Policy.recent_uids``, the guard against a finding published twice), a
  tombstone once every uid of it has left the window.

The records are read back in changelog order, the latest per key winning, so a compacted
topic restores what the uncompacted one would.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TypeAlias

import msgspec

from .model import IncidentState, SampleEntry, decode_state

RECENT = "\x00recent:"  # no correlation key starts with \x00
FIRST = "\x00first:"
Value: TypeAlias = IncidentState | list[str] | list[SampleEntry] | None
_UIDS = msgspec.json.Decoder(list[str])
_SAMPLE = msgspec.json.Decoder(list[SampleEntry])


def decode_changelog(key: str, raw: bytes | None) -> Value:
    """The value of one changelog record (``Correlator.changes``, written with ``encode``)."""
    if raw is None:
        return None
    if key.startswith(RECENT):
        return _UIDS.decode(raw)
    return _SAMPLE.decode(raw) if key.startswith(FIRST) else decode_state(raw)


class Changelog:
    """The records to write since the last call, and the bookkeeping to read them back."""

    def __init__(self, window: int, first_size: int) -> None:
        self.window = window  # uids remembered
        self.first_size = first_size  # a complete ``first`` sample
        self.uids: list[str] = []  # remembered since the last records()
        self.uids_from = -1  # the input offset of the first of them
        self.chunks: deque[tuple[str, int]] = deque()  # (key, uids) of the chunks still in the window
        self.chunked = 0
        self.first_written: dict[str, str] = {}  # key -> incident uid whose complete first sample is written
        self.first_read: dict[str, list[SampleEntry]] = {}  # restore: incident uid -> first sample

    def remembered(self, uid: str, offset: int) -> None:
        if not self.uids:
            self.uids_from = offset
        self.uids.append(uid)
        if len(self.uids) >= 2 * self.window:  # nobody asks for records (in process): keep the window's
            del self.uids[:-self.window]

    def records(self, dirty: dict[str, IncidentState | None]) -> dict[str, Value]:
        out: dict[str, Value] = {}
        for key, state in dirty.items():
            written = self.first_written.get(key)
            if written is not None and (state is None or state.uid != written):
                # That episode closed (another may have opened under the key in the same batch).
                del self.first_written[key]
                out[f"{FIRST}{key}\x00{written}"] = None
            if state is not None and len(state.first) >= self.first_size:
                if key not in self.first_written:
                    self.first_written[key] = state.uid
                    out[f"{FIRST}{key}\x00{state.uid}"] = list(state.first)
                out[key] = msgspec.structs.replace(state, first=[])
            else:
                out[key] = state
        if self.uids:
            key = f"{RECENT}{self.uids_from:020d}"
            out[key] = self.uids
            self.chunks.append((key, len(self.uids)))
            self.chunked += len(self.uids)
            self.uids = []
            while len(self.chunks) > 1 and self.chunked - self.chunks[0][1] >= self.window:
                old, n = self.chunks.popleft()
                self.chunked -= n
                out[old] = None
        return out

    def restore(self, key: str, value: Value, remember: Callable[[str], None],
                open_: dict[str, IncidentState]) -> tuple[bool, IncidentState | None]:
        """Take in one record; (True, state or None) when it is an episode's record."""
        if key.startswith(RECENT):
            if isinstance(value, list):
                for uid in value:
                    remember(str(uid))
                self.chunks.append((key, len(value)))
                self.chunked += len(value)
            elif any(k == key for k, _ in self.chunks):
                self.chunks = deque(c for c in self.chunks if c[0] != key)
                self.chunked = sum(n for _, n in self.chunks)
            return False, None
        if key.startswith(FIRST):
            episode, uid = key[len(FIRST):].rsplit("\x00", 1)
            if isinstance(value, list):
                sample = [e for e in value if isinstance(e, SampleEntry)]
                self.first_read[uid] = sample
                self.first_written[episode] = uid
                if (state := open_.get(episode)) is not None and state.uid == uid and not state.first:
                    state.first = sample
            else:
                self.first_read.pop(uid, None)
                if self.first_written.get(episode) == uid:
                    del self.first_written[episode]
            return False, None
        if not isinstance(value, IncidentState):
            return True, None
        if not value.first and value.uid in self.first_read:
            value.first = self.first_read[value.uid]
        return True, value
