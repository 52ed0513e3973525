"""The stream clock that profile expiry runs on, bounded against implausible event times.

Expiry drops every key whose last event is ``ttl_s`` behind the clock, so whoever moves the
clock decides what is forgotten: with the clock at the largest event time seen, one record
dated year 2970 expired (and tombstoned) every key of its partition. Event times come from
the sources (a host's agent, a sensor), so no single record may move the clock far:

- an event at most ``max_jump_s`` ahead of the clock moves it (the normal case: events
  arrive roughly in time order);
- an event further ahead (or any, before the clock started: a start is a jump) does not
  move it (it is still applied to its keys, at its own time). Its entity's earliest such
  time is remembered, and the clock jumps only once ``confirm`` distinct entities are
  ahead, to the *earliest* of their times: a genuine gap in the stream (a quiet partition
  overnight, a capture that starts later) is confirmed by the entities that report after
  it, while one host with a broken clock or a forged record can never move it, and
  ``confirm - 1`` of them only as far as an honest entity allows. An attacker able to
  write events for ``confirm`` entities can; a partition with fewer entities never expires
  by time (both are still bounded by the key budget).

The rule reads nothing but the event sequence (no wall clock), so the offline replay of a
capture years later and the online worker move the clock identically. A clock that is held
back only delays expiry; memory stays bounded by the key budget either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NOT_STARTED = float("-inf")


@dataclass
class StreamClock:
    max_jump_s: float = 3600.0
    confirm: int = 3
    now: float = NOT_STARTED
    ahead: dict[str, float] = field(default_factory=dict)  # entity -> earliest time beyond the bound

    def observe(self, entity: str, ts: float) -> bool:
        """Advance with ``entity``'s event at ``ts``; False: too far ahead to move the clock alone."""
        starting = self.now == NOT_STARTED  # the first times have nothing to be implausible against
        if ts <= self.now + self.max_jump_s:
            self.now = max(self.now, ts)
            if self.ahead:  # stale entries would lower the count a later jump needs
                self._settle()
            return True
        if ts < self.ahead.get(entity, float("inf")):
            self.ahead[entity] = ts
        if len(self.ahead) >= self.confirm:
            # Settling removes at least the earliest entry, so ``ahead`` never exceeds ``confirm``.
            self.now = max(self.now, min(self.ahead.values()))
            self._settle()
        return starting

    def _settle(self) -> None:
        """Times now within reach of the clock are no longer ahead: they move it, in order."""
        for entity, ts in sorted(self.ahead.items(), key=lambda item: item[1]):
            if ts <= self.now + self.max_jump_s:
                self.now = max(self.now, ts)
                del self.ahead[entity]
