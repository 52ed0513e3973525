"""Episodes: the incidents of one partition's correlation entities, driven by finding time.

An :class:`Correlator` is fed :class:`Member` s whose key is set (``links.resolve``), in
arrival order, and says what to publish. Per key at most one episode is open: a member
joins it, or opens one. An episode closes when the watermark (the latest finding time of
the partition) is ``quiet_s`` past its last member, or ``max_span_s`` past its first; a member that would
stretch it beyond ``max_span_s`` closes it and opens the next. At most ``max_open``
episodes are open: opening one more closes the least recently fed (reason ``evicted``),
so a storm of keys costs bounded memory and every incident is still closed, never lost.

Records are coalesced per :meth:`flush`: a new episode's Create carries every member that
joined before the flush; an open one gets at most one Update per flush, and only when
something material changed (a new kind, tactic, technique, rule or host, a higher
severity) or it doubled in size or ``update_interval_s`` of finding time passed: the
incident topic grows with the attack's story, not with its volume.

A finding dated more than ``max_future_s`` after the wall clock cannot be true (a broken
agent clock, a forged record): it joins at the watermark instead, so it neither moves the
watermark (which would close every episode of the partition) nor holds its own episode
open for years. Only the wall clock can tell: a stream-relative bound (as the profile
clock's) would stall a partition with few hosts after a genuine quiet night, and a replay
of an old capture is still in the wall clock's past, so the bound costs it nothing.

The incident uid is a hash of the key and the first member's uid: replaying the same
input (a restart, the offline evaluation) gives the same uids.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

import msgspec

from .changelog import Changelog, Value
from .model import Activity, Emission, IncidentState, Member, Policy, SampleEntry, Suppressed
from .suppression import Suppressions


def incident_uid(key: str, first_member_uid: str) -> str:
    return "inc-" + hashlib.sha256(f"{key}\x00{first_member_uid}".encode()).hexdigest()[:32]


class Correlator:
    """The episodes of one partition (or of a whole stream, in process)."""

    def __init__(self, policy: Policy | None = None, suppressions: Suppressions | None = None,
                 wall_clock: Callable[[], float] | None = None, stats: dict[str, int] | None = None) -> None:
        self.policy = policy or Policy()
        self.suppressions = suppressions or Suppressions()
        self.wall_clock = wall_clock or time.time
        self.watermark_ms = _NOT_STARTED
        self.open: OrderedDict[str, IncidentState] = OrderedDict()  # least recently fed first
        self._pending: list[Emission] = []
        # The latest finding uids: an at-least-once scorer re-publishes the findings of its
        # last batches after a crash, same uids; they must not count twice. Bounded, and in
        # the changelog (.changelog), so a restart remembers exactly what an uninterrupted
        # run would (the input offsets guard only the job's own replays, not a finding
        # published twice).
        self._recent: OrderedDict[str, None] = OrderedDict()
        self.log = Changelog(self.policy.recent_uids, max(1, self.policy.sample // 2))
        self._created: set[str] = set()  # keys opened since the last flush
        self._changed: set[str] = set()  # keys fed since the last flush
        # Keys whose growth no Update has published yet: an Update falls due once the
        # watermark is update_interval_s past the last one, even if no finding follows (a
        # late phase joining a large open incident must not wait for the Close).
        self._held: set[str] = set()
        self._dirty: dict[str, IncidentState | None] = {}  # changelog since the last changes()
        # No episode can be due before this (a lower bound: joins only push deadlines later),
        # so a flush per finding does not scan every open episode.
        self._next_due = _NOT_STARTED
        # Counters; a caller running several (one per partition) may pass one dict to share.
        self.stats = stats if stats is not None else {}
        for name in ("joined", "suppressed", "duplicates", "implausible_time", "created", "updated", "closed",
                     "evicted"):
            self.stats.setdefault(name, 0)

    def add(self, member: Member, offset: int = -1) -> str | Suppressed | None:
        """Feed one member; the uid of the incident it joined, the :class:`Suppressed`
        record when a rule muted it, None for a duplicate (``offset`` applied already, or a
        finding uid among the latest ``Policy.recent_uids``)."""
        key = member.key
        state = self.open.get(key)
        if (state is not None and 0 <= offset <= state.last_offset) or member.uid in self._recent:
            self.stats["duplicates"] += 1
            return None
        self._remember(member.uid)
        if offset >= 0:  # the job's input (a changelog is written); in process nobody reads one
            self.log.remembered(member.uid, offset)
        now_s = self.wall_clock()
        rule = self.suppressions.match(member, now_s) if self.suppressions.rules else None
        if rule is not None:
            self.stats["suppressed"] += 1
            return Suppressed(member=member, rule_id=rule.id, reason=rule.reason)
        time_ms = member.time_ms
        if time_ms > (now_s + self.policy.max_future_s) * 1000:
            self.stats["implausible_time"] += 1
            time_ms = self.watermark_ms if self.watermark_ms != _NOT_STARTED else int(now_s * 1000)
        self.watermark_ms = max(self.watermark_ms, time_ms)
        if state is not None:
            if time_ms - state.first_ms >= self.policy.max_span_s * 1000:
                self._close(key, "max_span")
                state = None
            elif time_ms - state.last_ms > self.policy.quiet_s * 1000:
                self._close(key, "quiet")
                state = None
        if state is None:
            state = self._open(member, time_ms)
        self._join(state, member, time_ms, offset)
        self.open.move_to_end(key)
        self._changed.add(key)
        self._dirty[key] = state
        self.stats["joined"] += 1
        return state.uid

    def _open(self, member: Member, time_ms: int) -> IncidentState:
        while len(self.open) >= self.policy.max_open:
            oldest = next(iter(self.open))
            self.stats["evicted"] += 1
            self._close(oldest, "evicted")
        state = IncidentState(uid=incident_uid(member.key, member.uid), key=member.key,
                              first_ms=time_ms, last_ms=time_ms)
        self.open[member.key] = state
        self._created.add(member.key)
        if self._next_due != _NOT_STARTED:  # (unknown: the next sweep scans anyway)
            self._next_due = min(self._next_due, self._due(state))
        return state

    def _due(self, state: IncidentState) -> int:
        """The watermark at which ``state`` closes."""
        quiet, span = int(self.policy.quiet_s * 1000), int(self.policy.max_span_s * 1000)
        return min(state.last_ms + quiet + 1, state.first_ms + span)

    def _join(self, s: IncidentState, m: Member, time_ms: int, offset: int) -> None:
        cap = self.policy.max_items
        s.count += 1
        s.first_ms, s.last_ms = min(s.first_ms, time_ms), max(s.last_ms, time_ms)
        s.last_offset = max(s.last_offset, offset)
        material = m.kind not in s.kinds or m.severity_id > s.severity_id
        s.kinds[m.kind] = s.kinds.get(m.kind, 0) + 1
        s.severity_id = max(s.severity_id, m.severity_id)
        # Most members bring nothing new: the membership tests are inline (a call per list
        # per member was a fifth of the correlator's CPU).
        for into, values in ((s.tactics, m.tactics), (s.techniques, m.techniques), (s.rules, m.rules),
                             (s.hosts, m.hosts)):
            for v in values:
                if v not in into and len(into) < cap:
                    into.append(v)
                    material = True
        for into, values in ((s.ips, m.ips), (s.users, m.users)):
            for v in values:
                if v not in into and len(into) < cap:
                    into.append(v)
        s.material = s.material or material
        entry = SampleEntry(m.uid, m.kind, m.time_ms, m.title)
        half = max(1, self.policy.sample // 2)
        if len(s.first) < half:
            s.first.append(entry)
        else:
            s.recent.append(entry)
            if len(s.recent) > half:
                del s.recent[0]

    def _close(self, key: str, reason: str) -> None:
        state = self.open.pop(key)
        state.closed = reason
        self._changed.discard(key)
        self._held.discard(key)
        if key in self._created:  # opened and closed within one flush: its Create goes first
            self._created.discard(key)
            self._emit(Activity.CREATE, state)
        self._emit(Activity.CLOSE, state)
        self._dirty[key] = None

    def _emit(self, activity: Activity, state: IncidentState) -> None:
        state.revision += 1
        state.emitted_count, state.emitted_ms, state.material = state.count, state.last_ms, False
        self._pending.append(Emission(activity, _copy(state)))
        self.stats[_COUNTED[activity]] += 1

    def advance(self, watermark_ms: int) -> None:
        """Move the watermark with no finding (never back): a partition that went quiet still
        closes its episodes once the caller (the online job, on wall time) says time passed."""
        self.watermark_ms = max(self.watermark_ms, watermark_ms)

    def sweep(self) -> None:
        """Close the episodes the watermark has left behind."""
        wm = self.watermark_ms
        if not self.open or wm < self._next_due:
            return
        quiet = int(self.policy.quiet_s * 1000)
        for key in [k for k, s in self.open.items() if wm >= self._due(s)]:
            self._close(key, "quiet" if wm - self.open[key].last_ms > quiet else "max_span")
        self._next_due = min((self._due(s) for s in self.open.values()), default=_NOT_STARTED)

    def flush(self) -> list[Emission]:
        """Everything to publish since the last flush, in order: closes, creates, updates."""
        self.sweep()
        for key in sorted(self._created):
            self._emit(Activity.CREATE, self.open[key])
        interval = int(self.policy.update_interval_s * 1000)
        held: set[str] = set()
        for key in sorted((self._changed | self._held) - self._created):
            s = self.open[key]
            if (s.material or s.count >= 2 * s.emitted_count
                    or max(s.last_ms, self.watermark_ms) - s.emitted_ms >= interval):
                self._emit(Activity.UPDATE, s)
                self._dirty[key] = s
            else:
                held.add(key)
        self._held = held
        self._created.clear()
        self._changed.clear()
        out, self._pending = self._pending, []
        return out

    def process(self, member: Member, offset: int = -1) -> tuple[str | Suppressed | None, list[Emission]]:
        """:meth:`add` then :meth:`flush`: one member in, what it caused out."""
        return self.add(member, offset), self.flush()

    def close_all(self, reason: str = "end_of_stream") -> list[Emission]:
        """Close every open episode (the end of a replayed capture)."""
        out = self.flush()
        for key in list(self.open):
            self._close(key, reason)
        return out + self.flush()

    def _remember(self, uid: str) -> None:
        self._recent[uid] = None
        if len(self._recent) > self.policy.recent_uids:
            self._recent.popitem(last=False)

    def changes(self) -> dict[str, Value]:
        """The changelog records to write since the last call (:mod:`.changelog`: episodes,
        None once closed; their complete first samples; the remembered finding uids)."""
        out, self._dirty = self.log.records(self._dirty), {}
        return out

    def load(self, key: str, value: Value) -> None:
        """Restore one changelog record, in changelog order (the latest per key wins)."""
        episode, state = self.log.restore(key, value, self._remember, self.open)
        if not episode:
            return
        if state is None:
            self.open.pop(key, None)
            return
        self.open[key] = state
        self.open.move_to_end(key)
        self.watermark_ms = max(self.watermark_ms, state.last_ms)
        self._next_due = _NOT_STARTED  # the next sweep scans and sets it


_NOT_STARTED = -(2**62)
_COUNTED = {Activity.CREATE: "created", Activity.UPDATE: "updated", Activity.CLOSE: "closed"}


def _copy(state: IncidentState) -> IncidentState:
    """A snapshot of ``state``: its lists and dict are copied, the state goes on changing."""
    return msgspec.structs.replace(
        state, kinds=dict(state.kinds), tactics=list(state.tactics), techniques=list(state.techniques),
        rules=list(state.rules), hosts=list(state.hosts), ips=list(state.ips), users=list(state.users),
        first=list(state.first), recent=list(state.recent))
