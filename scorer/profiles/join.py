"""Joining profiles into the feature vector: the reads, and the v2 feature set around v1.

Every read takes the scored event's time ``t`` and uses only what the profile knew before
``t`` (item first-seen and hours before ``t``; window minutes completed before ``t``'s own
minute). Profiles that already include ``t`` or later events give the same numbers, which
is what lets the scorer join whatever the job has published without waiting for it, and
what makes the offline computation (state after the whole capture) equal the online one.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np

from scorer.events.structs import Event, EventKind
from scorer.features.base import F32, FeatureSet
from scorer.profiles.schema import SPAN_S, WINDOW_SLOTS, ItemProfile, Profile, WindowProfile, hour_of, slot_of


class ProfileSource(Protocol):
    """Where the latest profile of a key comes from (a topic view, or local state)."""

    def get(self, key: str) -> Profile | None: ...

    def observe(self, kind: EventKind, events: Sequence[Event]) -> None:
        """Called with each batch before the join; only a local source updates here."""
        ...


class NoProfiles:
    """A source that knows nothing: every item reads as never seen (tests, contracts)."""

    def get(self, key: str) -> Profile | None:
        return None

    def observe(self, kind: EventKind, events: Sequence[Event]) -> None:
        return None


class ItemRead(NamedTuple):
    seen: bool  # first seen strictly before t
    log_age: float  # log1p(seconds since first seen), 0 when not seen
    hours: int  # distinct hours seen before t's hour (saturates at HOURS_KEPT)


class WindowRead(NamedTuple):
    events: int
    out: float
    into: float
    size_sq: float
    gaps: int
    gap_sum: float
    gap_sq: float
    distinct_a: int
    distinct_b: int
    active: int  # minutes with at least one event
    last: int  # events in the last completed minute


NOT_SEEN = ItemRead(False, 0.0, 0)
EMPTY = WindowRead(0, 0.0, 0.0, 0.0, 0, 0.0, 0.0, 0, 0, 0, 0)


def read_item(p: Profile | None, t: float) -> ItemRead:
    if not isinstance(p, ItemProfile) or not p.first_seen < t:
        return NOT_SEEN
    return ItemRead(True, math.log1p(t - p.first_seen), bisect.bisect_left(p.hours, hour_of(t)))


def read_window(p: Profile | None, t: float) -> WindowRead:
    """Sums over the WINDOW_SLOTS completed minutes before t's minute."""
    if not isinstance(p, WindowProfile):
        return EMPTY
    hi = slot_of(t)
    lo = hi - WINDOW_SLOTS
    count = gaps = active = last = 0
    out = into = size_sq = gap_sum = gap_sq = 0.0
    seen_a: set[str] = set()
    seen_b: set[str] = set()
    for s in p.slots:
        if s.index < lo:
            continue
        if s.index >= hi:
            break
        count += s.count
        out += s.out
        into += s.into
        size_sq += s.size_sq
        gaps += s.gaps
        gap_sum += s.gap_sum
        gap_sq += s.gap_sq
        seen_a.update(s.a)
        seen_b.update(s.b)
        active += s.count > 0
        if s.index == hi - 1:
            last = s.count
    return WindowRead(count, out, into, size_sq, gaps, gap_sum, gap_sq, len(seen_a), len(seen_b), active, last)


def cv(n: int, total: float, total_sq: float) -> float:
    """Coefficient of variation from sums; 1.0 (what random arrivals give) under 3 values."""
    if n < 3 or total <= 0:
        return 1.0
    mean = total / n
    return math.sqrt(max(total_sq / n - mean * mean, 0.0)) / mean


class Reader:
    """Memoised reads for one batch: events of one entity in one minute share a window read."""

    def __init__(self, source: ProfileSource) -> None:
        self.source = source
        self._windows: dict[tuple[str, int], WindowRead] = {}

    def item(self, profile_key: str | None, t: float) -> ItemRead:
        return NOT_SEEN if profile_key is None else read_item(self.source.get(profile_key), t)

    def seen(self, profile_key: str, t: float) -> bool:
        """The key (item or window) existed before t: first-seen is a minimum, ahead-safe."""
        p = self.source.get(profile_key)
        return p is not None and p.first_seen < t

    def window(self, profile_key: str, t: float) -> WindowRead:
        memo = (profile_key, slot_of(t))
        out = self._windows.get(memo)
        if out is None:
            out = self._windows[memo] = read_window(self.source.get(profile_key), t)
        return out


class ProfileColumns(Protocol):
    names: tuple[str, ...]

    def rows(self, events: Sequence[Event], reader: Reader) -> list[tuple[float, ...]]: ...


class ProfiledFeatures:
    """Feature set v2 of a kind: the v1 columns, then the profile columns joined from ``source``."""

    def __init__(self, base: FeatureSet, columns: ProfileColumns, source: ProfileSource) -> None:
        self.kind = base.kind
        self.base = base
        self.columns = columns
        self.source = source
        self.names: tuple[str, ...] = base.names + columns.names

    def transform(self, events: Sequence[Event]) -> F32:
        x = self.base.transform(events)  # validates the event type too
        extra = np.zeros((len(events), len(self.columns.names)), dtype=np.float64)
        for lo, hi in spans(events):
            part = events[lo:hi]
            self.source.observe(self.kind, part)
            extra[lo:hi] = self.columns.rows(part, Reader(self.source))
        np.nan_to_num(extra, copy=False, nan=0.0, posinf=1e6, neginf=-1e6)
        return np.hstack([x, extra.astype(np.float32)])


def spans(events: Sequence[Event]) -> list[tuple[int, int]]:
    """Runs of consecutive events within SPAN_S of the run's first event.

    A local source applies a whole run before joining it, so a run must stay well inside
    the retention margin (one capture fed in one piece would otherwise be joined against
    state hours ahead, whose old minutes are already pruned). A topic view is unaffected.
    """
    out, lo = [], 0
    for i in range(1, len(events) + 1):
        if i == len(events) or abs(events[i].ts - events[lo].ts) > SPAN_S:
            out.append((lo, i))
            lo = i
    return out
