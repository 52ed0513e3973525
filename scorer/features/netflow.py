"""Netflow features: only what both Zeek conn.log and CICFlowMeter give.

Volumes are log-scaled (flows span bytes to gigabytes), ports are reduced to classes
(exact port numbers memorise a lab), TCP state is read from Zeek's history/conn_state or
CICFlowMeter's flag counts, whichever the record has. Nothing names the lab, the host or
the dataset, so a model cannot learn "which capture is this" instead of "is this bad".
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from scorer.events.columnar import READ_STATISTICS, VIEWS, statistics
from scorer.events.structs import Event, EventKind, FlowRecord
from scorer.features.base import (
    F32,
    F64,
    column,
    entity_rows,
    entity_windows,
    log1p,
    member,
    number_columns,
    only,
    ratio,
    stack,
)
from scorer.features.texts import Texts, factorize

WEB_PORTS = frozenset({80, 443, 8000, 8080, 8443})
SERVICE_PORTS = frozenset({20, 21, 22, 23, 25, 53, 67, 68, 88, 110, 123, 135, 137, 138, 139,
                           143, 161, 389, 445, 465, 587, 636, 993, 995, 1433, 3306, 3389, 5432,
                           5900, 5985, 5986})
_RST_STATES = frozenset({"rej", "rsto", "rstr", "rstos0", "rstrh"})
WINDOW_S = 60.0
K = TypeVar("K", int, str)
MAX_WINDOW_FLOWS = 2048  # per source: bounds memory under a flood

STATELESS = (
    "log_duration", "log_src_bytes", "log_dst_bytes", "log_src_pkts", "log_dst_pkts",
    "log_src_bytes_per_pkt", "log_dst_bytes_per_pkt", "dst_bytes_share", "dst_pkts_share",
    "log_bytes_per_s", "log_pkts_per_s", "no_reply", "no_payload",
    "proto_tcp", "proto_udp", "proto_icmp", "proto_other",
    "dport_wellknown", "dport_registered", "dport_dynamic", "dport_web", "dport_service",
    "sport_wellknown", "sport_dynamic", "tcp_fin_seen", "tcp_rst_seen",
)
# Distinct destinations per source, not the raw flow count: training data (CIC) is a random
# sample of flows, so its per-source *counts* are far sparser than live traffic and taught
# "busy source = attack" (a busy benign host then scored 0.9998). Distinct ports/IPs
# saturate quickly and survive the sampling far better.
STATEFUL = ("src_dst_ports_60s", "src_dst_ips_60s")
_NUMBERS = ("duration", "src_bytes", "dst_bytes", "src_pkts", "dst_pkts", "dst_port", "src_port")


class _SourceWindow:
    """The flows of one source IP in the last WINDOW_S seconds, with distinct counts."""

    __slots__ = ("flows", "ips", "ports")

    def __init__(self) -> None:
        self.flows: deque[tuple[float, int, str]] = deque()
        self.ports: Counter[int] = Counter()
        self.ips: Counter[str] = Counter()

    def add(self, ts: float, port: int, ip: str) -> tuple[int, int]:
        # Runs once per flow: locals and dict.get instead of Counter's Python-level __missing__.
        flows, ports, ips = self.flows, self.ports, self.ips
        while flows and (flows[0][0] < ts - WINDOW_S or len(flows) >= MAX_WINDOW_FLOWS):
            _, old_port, old_ip = flows.popleft()
            _drop(ports, old_port)
            _drop(ips, old_ip)
        flows.append((ts, port, ip))
        ports[port] = ports.get(port, 0) + 1
        ips[ip] = ips.get(ip, 0) + 1
        return len(ports), len(ips)


def _drop(counter: Counter[K], key: K) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


class NetflowFeatures:
    """Features of :class:`FlowRecord` batches (stateful: per-source 60 s window)."""

    kind = EventKind.NETFLOW
    names: tuple[str, ...] = STATELESS + STATEFUL
    reads_views = True  # transform takes FlowView rows too: flows are decoded without their dicts

    def __init__(self, max_entities: int = 100_000) -> None:
        self.state = entity_windows(_SourceWindow, max_entities, 0, WINDOW_S, MAX_WINDOW_FLOWS)

    def transform(self, events: Sequence[Event]) -> F32:
        """Rows of :class:`FlowRecord` events, or of :data:`~scorer.events.columnar.FlowView`
        rows (the columnar decode's): the same attributes, the same matrix."""
        only(events, (FlowRecord, *VIEWS), "NetflowFeatures.transform")
        cols = self._stateless(events)
        cols.update(self._stateful(events))
        return stack(self.names, cols, len(events))

    def _stateless(self, flows: Sequence[object]) -> dict[str, F64]:
        # One pass over the flows for the seven numbers (rows of a view are plain numbers).
        dur, sb, db, sp, dp, dport, sport = np.ascontiguousarray(number_columns(flows, _NUMBERS).T)
        proto = Texts(column(flows, "proto")).map(str.lower)
        # Durations under 1 ms are clock resolution, not infinitely fast flows.
        secs = np.maximum(dur, 1e-3)
        cols: dict[str, F64] = {
            "log_duration": log1p(dur),
            "log_src_bytes": log1p(sb), "log_dst_bytes": log1p(db),
            "log_src_pkts": log1p(sp), "log_dst_pkts": log1p(dp),
            "log_src_bytes_per_pkt": log1p(ratio(sb, sp)),
            "log_dst_bytes_per_pkt": log1p(ratio(db, dp)),
            "dst_bytes_share": ratio(db, sb + db), "dst_pkts_share": ratio(dp, sp + dp),
            "log_bytes_per_s": log1p((sb + db) / secs), "log_pkts_per_s": log1p((sp + dp) / secs),
            "no_reply": (dp == 0).astype(np.float64),
            "no_payload": ((sb + db) == 0).astype(np.float64),
            "proto_tcp": proto.isin(frozenset({"tcp"})),
            "proto_udp": proto.isin(frozenset({"udp"})),
            "proto_icmp": proto.isin(frozenset({"icmp", "icmp6"})),
            "proto_other": 1.0 - proto.isin(frozenset({"tcp", "udp", "icmp", "icmp6"})),
            "dport_wellknown": ((dport > 0) & (dport < 1024)).astype(np.float64),
            "dport_registered": ((dport >= 1024) & (dport < 49152)).astype(np.float64),
            "dport_dynamic": (dport >= 49152).astype(np.float64),
            "dport_web": member(dport, WEB_PORTS).astype(np.float64),
            "dport_service": member(dport, SERVICE_PORTS).astype(np.float64),
            "sport_wellknown": ((sport > 0) & (sport < 1024)).astype(np.float64),
            "sport_dynamic": (sport >= 49152).astype(np.float64),
        }
        cols["tcp_fin_seen"], cols["tcp_rst_seen"] = _tcp_flags(flows)
        return cols

    def _stateful(self, flows: Sequence[object]) -> dict[str, F64]:
        logs = log1p(entity_rows(self.state, column(flows, "src_ip"), column(flows, "ts"),
                                 column(flows, "dst_port"), column(flows, "dst_ip"), width=len(STATEFUL)))
        return {name: logs[:, j] for j, name in enumerate(STATEFUL)}


def _tcp_flags(flows: Sequence[object]) -> tuple[F64, F64]:
    """FIN / RST seen: Zeek history letters (either case) or CICFlowMeter flag counts."""
    # Zeek's verdict per distinct (history, conn_state) pair; None: the record has neither.
    history, state = column(flows, "history"), column(flows, "conn_state")
    stats = cic_statistics(flows, READ_STATISTICS)
    fin_count, rst_count = stats[:, 0], stats[:, 1] + stats[:, 2] + stats[:, 3]
    if history.count(None) == len(flows) and state.count(None) == len(flows):  # CICFlowMeter only
        return (fin_count > 0).astype(np.float64), (rst_count > 0).astype(np.float64)
    pairs, inverse = factorize(list(zip(history, state, strict=True)))
    verdicts = np.array([_zeek_flags(h, s) for h, s in pairs]).reshape(-1, 3)[inverse]
    has_zeek = verdicts[:, 0] > 0
    fin = np.where(has_zeek, verdicts[:, 1], fin_count > 0).astype(np.float64)
    rst = np.where(has_zeek, verdicts[:, 2], rst_count > 0).astype(np.float64)
    return fin, rst


def _zeek_flags(history: str | None, conn_state: str | None) -> tuple[bool, bool, bool]:
    if history is None and conn_state is None:
        return False, False, False
    hist, state = (history or "").lower(), (conn_state or "").lower()
    return True, "f" in hist or state == "sf", "r" in hist or state in _RST_STATES


def cic_statistics(flows: Sequence[object], names: tuple[str, ...]) -> F64:
    """``[n, len(names)]``: CICFlowMeter statistics over the batch (0.0 where a record does
    not carry one), read from views in one C-level pass (or by the native scanner)."""
    return statistics(column(flows, "extra"), names)
