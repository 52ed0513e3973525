"""Bounded per-key profile state, updated in place, with the changes waiting to be published.

One store holds the profiles of one input partition (online) or of one capture (offline).
Bounds, all counted in :class:`StoreStats` and exported as metrics by the worker:

- per entity and scope (images of one host, pairs of one source...) at most
  ``max_per_entity`` keys. A key beyond that is *refused*, not swapped in: a flood of new
  items on a host cannot flush its baseline, and a refused item simply keeps reading as new;
- keys whose last event is older than ``ttl_s`` of stream time expire (tombstoned); the
  stream clock is bounded against implausible event times (:mod:`scorer.profiles.clock`);
- all stores of a process share one :class:`KeyBudget`; at the cap the least recently
  updated key of the inserting store is evicted (tombstoned). A flood of new entities
  therefore costs a bounded amount of memory and evicts the stalest state first.

Every key remembers the input offset of the last event applied to it, and ``apply`` skips
an event at or below it: replaying the uncommitted tail after a crash cannot count twice.
"""

from __future__ import annotations

import bisect
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from scorer.profiles.clock import StreamClock
from scorer.profiles.schema import (
    DISTINCT_KEPT,
    HOURS_KEPT,
    MARGIN_SLOTS,
    SEP,
    WINDOW_SLOTS,
    ItemProfile,
    Profile,
    Slot,
    WindowProfile,
    entity_of,
    hour_of,
    slot_of,
)

DAY_S = 86_400.0


@dataclass
class KeyBudget:
    """The total number of keys all stores of one process may hold."""

    max_keys: int = 500_000
    used: int = 0


@dataclass
class StoreStats:
    applied: int = 0  # key updates applied
    duplicates: int = 0  # key updates skipped: offset already applied (replay after a crash)
    refused: int = 0  # new keys refused: their entity is at max_per_entity
    expired: int = 0  # keys dropped after ttl_s without events
    evicted: int = 0  # keys dropped because the process hit its key budget
    implausible: int = 0  # key updates too far ahead of the stream clock to move it (scorer.profiles.clock)


@dataclass
class Limits:
    ttl_s: float = 30 * DAY_S
    max_per_entity: int = 4096
    max_jump_s: float = 3600.0  # the furthest one event may move the stream clock
    confirm_entities: int = 3  # distinct entities that must confirm a larger jump


@dataclass
class ProfileStore:
    budget: KeyBudget = field(default_factory=KeyBudget)
    limits: Limits = field(default_factory=Limits)
    track_changes: bool = True  # offline stores publish nothing
    stats: StoreStats = field(default_factory=StoreStats)

    def __post_init__(self) -> None:
        self.clock = StreamClock(self.limits.max_jump_s, self.limits.confirm_entities)  # expiry's event time
        self._keys: OrderedDict[str, Profile] = OrderedDict()  # least recently updated first
        self._per_entity: Counter[str] = Counter()
        self._changed: dict[str, Profile | None] = {}  # key -> latest value, None = tombstone

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def stream_ts(self) -> float:
        return self.clock.now

    def get(self, key: str) -> Profile | None:
        return self._keys.get(key)

    def load(self, key: str, profile: Profile | None) -> None:
        """Rebuild from the profile topic (oldest record first); changes nothing to publish."""
        if profile is None:
            self._drop(key, publish=False)
            return
        if key not in self._keys:
            self._admit(key)
        self._keys[key] = profile
        self._keys.move_to_end(key)
        # The same rule as live events: a restored key dated far ahead cannot move the clock.
        self.clock.observe(_entity(key), _last(profile))

    def item(self, key: str, ts: float, offset: int) -> None:
        p = self._keys.get(key)
        if p is None:
            if self._admit(key):
                self._keys[key] = ItemProfile(ts, ts, [hour_of(ts)], offset)
                self._changed_now(key, ts)
            return
        if not isinstance(p, ItemProfile) or self._duplicate(p.offset, offset):
            return
        p.first_seen, p.last_seen, p.offset = min(p.first_seen, ts), max(p.last_seen, ts), offset
        _add_sorted(p.hours, hour_of(ts), HOURS_KEPT)
        self._changed_now(key, ts)

    def window(self, key: str, ts: float, offset: int, *, out: float = 0.0, into: float = 0.0,
               a: str | None = None, b: str | None = None) -> None:
        p = self._keys.get(key)
        gap: float | None = None
        if p is None:
            if not self._admit(key):
                return
            p = self._keys[key] = WindowProfile(ts, ts, [], offset)
        elif not isinstance(p, WindowProfile) or self._duplicate(p.offset, offset):
            return
        else:
            gap = ts - p.last_ts if ts >= p.last_ts else None  # late events add no gap
            p.first_seen, p.last_ts, p.offset = min(p.first_seen, ts), max(p.last_ts, ts), offset
        s = _slot(p.slots, slot_of(ts))
        size = out + into
        s.count += 1
        s.out += out
        s.into += into
        s.size_sq += size * size
        if gap is not None:
            s.gaps += 1
            s.gap_sum += gap
            s.gap_sq += gap * gap
        for values, v in ((s.a, a), (s.b, b)):
            if v is not None and len(values) < DISTINCT_KEPT and v not in values:
                values.append(v)
        oldest = slot_of(p.last_ts) - WINDOW_SLOTS - MARGIN_SLOTS
        while p.slots and p.slots[0].index < oldest:
            p.slots.pop(0)
        self._changed_now(key, ts)

    def expire(self) -> None:
        """Drop keys without events for ttl_s of stream time (least recently updated first)."""
        horizon = self.stream_ts - self.limits.ttl_s
        while self._keys:
            k, p = next(iter(self._keys.items()))
            if _last(p) >= horizon:
                break
            self._drop(k, publish=True)
            self.stats.expired += 1

    def changes(self) -> list[tuple[str, Profile | None]]:
        """The keys changed since the last call with their latest value (None: delete)."""
        out = list(self._changed.items())
        self._changed.clear()
        return out

    def clear(self) -> None:
        """Forget everything (the partition moved away); frees the budget it used."""
        self.budget.used -= len(self._keys)
        self._keys.clear()
        self._per_entity.clear()
        self._changed.clear()

    # ------------------------------------------------------------------ internals
    def _admit(self, key: str) -> bool:
        entity = entity_of(key)
        if self._per_entity[entity] >= self.limits.max_per_entity:
            self.stats.refused += 1
            return False
        while self.budget.used >= self.budget.max_keys and self._keys:
            self._drop(next(iter(self._keys)), publish=True)
            self.stats.evicted += 1
        self._per_entity[entity] += 1
        self.budget.used += 1
        return True

    def _drop(self, key: str, *, publish: bool) -> None:
        if self._keys.pop(key, None) is None:
            return
        entity = entity_of(key)
        self._per_entity[entity] -= 1
        if self._per_entity[entity] <= 0:
            del self._per_entity[entity]
        self.budget.used -= 1
        if publish and self.track_changes:
            self._changed[key] = None

    def _duplicate(self, applied: int, offset: int) -> bool:
        if offset <= applied:
            self.stats.duplicates += 1
            return True
        return False

    def _changed_now(self, key: str, ts: float) -> None:
        self.stats.applied += 1
        if not self.clock.observe(_entity(key), ts):
            self.stats.implausible += 1
        self._keys.move_to_end(key)
        if self.track_changes:
            self._changed[key] = self._keys[key]


def _entity(key: str) -> str:
    """The host or source IP of a key (``scope SEP entity ...``): the clock's confirming unit."""
    return key.split(SEP, 2)[1] if SEP in key else key


def _last(p: Profile) -> float:
    return p.last_seen if isinstance(p, ItemProfile) else p.last_ts


def _add_sorted(values: list[int], v: int, cap: int) -> None:
    """Keep the ``cap`` smallest distinct values: later (or replayed) events never move them."""
    i = bisect.bisect_left(values, v)
    if i < len(values) and values[i] == v:
        return
    if len(values) >= cap and i >= cap:
        return
    values.insert(i, v)
    del values[cap:]


def _slot(slots: list[Slot], index: int) -> Slot:
    if slots and slots[-1].index == index:  # the common case: events arrive in time order
        return slots[-1]
    i = bisect.bisect_left([s.index for s in slots], index)
    if i < len(slots) and slots[i].index == index:
        return slots[i]
    slot = Slot(index)
    slots.insert(i, slot)
    return slot
