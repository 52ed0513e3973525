"""The profile columns of each kind (feature set v2), read through :class:`Reader`.

What lives here and not in the scorer's 60 s entity state: behaviour over the last hour
(completed minutes) and over the entity's whole retained history (first seen, in how many
distinct hours). The exact, event-by-event short windows stay in :mod:`scorer.features`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, TypeVar

from scorer.events.structs import EndpointEvent, Event, EventKind, FlowRecord, SiemAlert
from scorer.profiles.join import Reader, cv
from scorer.profiles.keys import edr_keys, flow_keys, siem_keys
from scorer.profiles.schema import HOURS_KEPT, WINDOW_SLOTS

log1p = math.log1p
E = TypeVar("E", FlowRecord, EndpointEvent, SiemAlert)


def _share(item_hours: int, host_hours: int) -> float:
    return item_hours / host_hours if host_hours else 0.0


def _burst(last: int, count: int) -> float:
    """log of (events in the last minute + 1) over (the window's mean per minute + 1)."""
    return math.log((last + 1.0) / (count / WINDOW_SLOTS + 1.0))


class _Columns(ABC, Generic[E]):
    """One kind's profile columns: a row per event, in ``names`` order."""

    names: tuple[str, ...]
    event_type: type[E]

    def rows(self, events: Sequence[Event], reader: Reader) -> list[tuple[float, ...]]:
        out: list[tuple[float, ...]] = []
        for event in events:
            assert isinstance(event, self.event_type)
            out.append(self.row(event, reader))
        return out

    @abstractmethod
    def row(self, event: E, reader: Reader) -> tuple[float, ...]: ...


class NetflowColumns(_Columns[FlowRecord]):
    event_type = FlowRecord
    names: tuple[str, ...] = (
        "p_src_conns_1h", "p_src_dsts_1h", "p_src_ports_1h", "p_src_out_share_1h", "p_src_active_1h",
        "p_pair_new", "p_pair_conns_1h", "p_pair_active_1h", "p_pair_log_gap_1h", "p_pair_gap_cv_1h",
        "p_pair_size_cv_1h",
    )

    def row(self, event: FlowRecord, reader: Reader) -> tuple[float, ...]:
        keys = flow_keys(event)
        s = reader.window(keys.source, event.ts)
        p = reader.window(keys.pair, event.ts)
        pair_seen = reader.seen(keys.pair, event.ts)
        return (
            log1p(s.events), log1p(s.distinct_a), log1p(s.distinct_b),
            s.out / (s.out + s.into) if s.out + s.into > 0 else 0.0, s.active / WINDOW_SLOTS,
            0.0 if pair_seen else 1.0, log1p(p.events), p.active / WINDOW_SLOTS,
            log1p(p.gap_sum / p.gaps) if p.gaps else 0.0, cv(p.gaps, p.gap_sum, p.gap_sq),
            cv(p.events, p.out + p.into, p.size_sq),
        )


class EdrColumns(_Columns[EndpointEvent]):
    """Novelty on the host only. The profile also keeps each item's age and in how many hours
    it was seen, but columns built from them (ages, prevalence shares, host history depth)
    cost detections in the development half of the EDR groups (docs/profiles.md), so v2 does
    not carry them."""

    event_type = EndpointEvent
    names: tuple[str, ...] = ("p_image_new", "p_lineage_new", "p_command_new")

    def row(self, event: EndpointEvent, reader: Reader) -> tuple[float, ...]:
        keys = edr_keys(event)
        # Only an event that has the item can be new in it (no image: nothing is new).
        return tuple(float(k is not None and not reader.item(k, event.ts).seen)
                     for k in (keys.image, keys.lineage, keys.command))


class SiemColumns(_Columns[SiemAlert]):
    event_type = SiemAlert
    names: tuple[str, ...] = (
        "p_host_log_age", "p_host_hours", "p_host_alerts_1h", "p_host_rules_1h", "p_host_burst",
        "p_rule_new", "p_rule_log_age", "p_rule_hours_share", "p_rule_alerts_1h", "p_rule_burst",
    )

    def row(self, event: SiemAlert, reader: Reader) -> tuple[float, ...]:
        keys = siem_keys(event)
        host = reader.item(keys.host, event.ts)
        hw = reader.window(keys.host_window, event.ts)
        rule = reader.item(keys.rule, event.ts)
        rw = reader.window(keys.rule_window, event.ts)
        return (
            host.log_age, host.hours / HOURS_KEPT, log1p(hw.events), log1p(hw.distinct_a),
            _burst(hw.last, hw.events),
            0.0 if rule.seen else 1.0, rule.log_age, _share(rule.hours, host.hours),
            log1p(rw.events), _burst(rw.last, rw.events),
        )


COLUMNS: dict[EventKind, type[NetflowColumns] | type[EdrColumns] | type[SiemColumns]] = {
    EventKind.NETFLOW: NetflowColumns,
    EventKind.EDR: EdrColumns,
    EventKind.SIEM: SiemColumns,
}
