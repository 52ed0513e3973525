"""Profiles computed in process: the stream jobs' update rule run over events in time order.

Training uses this (through :func:`scorer.features.capture_matrix` with feature set v2), so
the model learns from exactly the profile features serving joins from the topic; the embedded
scorer (``scorer demo``, tests without Kafka) uses it too. State is local, exact and bounded
like the worker's, but lives only as long as the process.
"""

from __future__ import annotations

from collections.abc import Sequence

from scorer.events.structs import Event, EventKind
from scorer.profiles.schema import Profile
from scorer.profiles.store import KeyBudget, Limits, ProfileStore
from scorer.profiles.updates import apply


class LocalProfiles:
    """A :class:`scorer.profiles.join.ProfileSource` that updates itself from each batch."""

    def __init__(self, limits: Limits | None = None, budget: KeyBudget | None = None) -> None:
        self.store = ProfileStore(budget or KeyBudget(), limits or Limits(), track_changes=False)
        self._offset = 0  # stands in for the input offset: one per event observed

    def get(self, key: str) -> Profile | None:
        return self.store.get(key)

    def observe(self, kind: EventKind, events: Sequence[Event]) -> None:
        # Arrival order, as the worker applies a partition (and as the v1 entity state does):
        # then batch boundaries cannot change anything. The join reads only the past of each
        # event, so applying the whole batch before joining it gives the same numbers.
        for event in events:
            apply(self.store, kind, event, self._offset)
            self._offset += 1
        self.store.expire()


class FrozenProfiles:
    """Reads another source and never updates it: events joined against a fixed history."""

    def __init__(self, source: LocalProfiles) -> None:
        self.source = source

    def get(self, key: str) -> Profile | None:
        return self.source.get(key)

    def observe(self, kind: EventKind, events: Sequence[Event]) -> None:
        return None
