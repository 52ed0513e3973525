"""What one event does to the profiles of its entities: the single update rule that the
stream worker runs online and :mod:`scorer.profiles.local` runs over captures for training."""

from __future__ import annotations

from collections.abc import Callable

from scorer.events.structs import EndpointEvent, Event, EventKind, FlowRecord, SiemAlert
from scorer.profiles.keys import edr_keys, flow_keys, siem_keys
from scorer.profiles.store import ProfileStore


def apply_flow(store: ProfileStore, f: FlowRecord, offset: int) -> None:
    keys = flow_keys(f)
    out, into = float(f.src_bytes), float(f.dst_bytes)
    store.window(keys.source, f.ts, offset, out=out, into=into, a=f.dst_ip, b=str(f.dst_port))
    store.window(keys.pair, f.ts, offset, out=out, into=into)


def apply_edr(store: ProfileStore, e: EndpointEvent, offset: int) -> None:
    keys = edr_keys(e)
    store.item(keys.host, e.ts, offset)
    for item in (keys.image, keys.lineage, keys.command):
        if item is not None:
            store.item(item, e.ts, offset)


def apply_siem(store: ProfileStore, a: SiemAlert, offset: int) -> None:
    keys = siem_keys(a)
    rule = a.rule_id or a.rule_name.lower()
    store.item(keys.host, a.ts, offset)
    store.window(keys.host_window, a.ts, offset, a=rule)
    store.item(keys.rule, a.ts, offset)
    store.window(keys.rule_window, a.ts, offset)


_RULES: dict[EventKind, Callable[[ProfileStore, Event, int], None]] = {
    EventKind.NETFLOW: apply_flow,  # type: ignore[dict-item]  # each rule takes its kind's struct
    EventKind.EDR: apply_edr,  # type: ignore[dict-item]
    EventKind.SIEM: apply_siem,  # type: ignore[dict-item]
}


def apply(store: ProfileStore, kind: EventKind, event: Event, offset: int) -> None:
    """Apply ``event`` (input ``offset``) to ``store``; an offset already applied is skipped."""
    _RULES[kind](store, event, offset)
