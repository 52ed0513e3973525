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
import numpy.typing as npt

import scorer.native
from scorer.events.columnar import READ_STATISTICS, VIEWS, statistics
from scorer.events.flowviews import kept_statistics
from scorer.events.structs import Event, EventKind, FlowRecord
from scorer.features.base import (
    F32,
    F64,
    Rows,
    column,
    finished,
    member,
    number_columns,
    only,
    ratio,
)
from scorer.features.entity_state import entity_rows, entity_windows
from scorer.features.texts import factorize

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
        # Feature-major, a block of columns per numpy call: a small batch pays per call, not
        # per value (a call per column cost ~85 µs a batch of 5).
        n = len(events)
        out = np.empty((len(self.names), n), dtype=np.float64)
        logged = np.empty((_LOGGED + len(STATEFUL), n), dtype=np.float64)
        native = scorer.native.module()
        # The decode's FlowRows of CICFlowMeter records (the realistic stream's) in one native pass:
        # the ~40 Python and numpy calls below cost a 17-flow batch more than its values.
        if native is None or not native.flow_features(self.state, events if isinstance(events, list) else list(events),
                                                      out, logged, _WEB_PORTS, _SERVICE_PORTS):
            only(events, (FlowRecord, *VIEWS), "NetflowFeatures.transform")
            self._stateless(events, out, logged)
            logged[_LOGGED:] = entity_rows(self.state, column(events, "src_ip"), column(events, "ts"),
                                           column(events, "dst_port"), column(events, "dst_ip"),
                                           width=len(STATEFUL)).T
        np.log1p(np.maximum(logged, 0.0, out=logged), out=logged)
        return finished(out, Rows(_LOG_ROWS, _LOG_AT, logged))

    def _stateless(self, flows: Sequence[object], out: F64, logged: F64) -> None:
        """Fills ``out``'s rows but the logged ones, whose arguments go to ``logged`` (up to
        _LOGGED; the stateful counts follow) for one log1p over them all."""
        nums = np.ascontiguousarray(number_columns(flows, _NUMBERS).T)
        native = scorer.native.module()
        if native is not None:  # ~20 numpy calls in one pass: a small batch paid per call
            native.flow_numbers(nums, out, logged, _WEB_PORTS, _SERVICE_PORTS)
        else:
            _numbers_reference(nums, out, logged)
        out[13:17] = _PROTO_ONEHOT[_proto_classes(column(flows, "proto"))].T
        _tcp_flags(flows, out[24:26])


def _numbers_reference(nums: F64, out: F64, logged: F64) -> None:
    """The features of the flows' seven numbers (``nums`` [len(_NUMBERS), n]) into their rows of
    ``out`` (7, 8, 11, 12, 17-23) and ``logged`` (up to _LOGGED); scorer.native's flow_numbers
    computes the very same values."""
    dur, dp, dport = nums[0], nums[4], nums[5]
    logged[:5] = nums[:5]
    totals = nums[1:5:2] + nums[2:5:2]  # bytes, packets (both directions)
    logged[5:7] = ratio(nums[1:3], nums[3:5])  # per packet, each direction
    # Durations under 1 ms are clock resolution, not infinitely fast flows.
    np.divide(totals, np.maximum(dur, 1e-3), out=logged[7:_LOGGED])
    out[7:9] = ratio(nums[2:5:2], totals)  # the reply's shares
    out[11] = dp == 0
    out[12] = totals[0] == 0
    ports = nums[5:7]  # dst, src
    above, high = ports > 0, ports >= 49152
    low = ports < 1024
    out[17] = above[0] & low[0]
    out[18] = (dport >= 1024) & (dport < 49152)
    out[19] = high[0]
    out[20] = member(dport, WEB_PORTS)
    out[21] = member(dport, SERVICE_PORTS)
    out[22] = above[1] & low[1]
    out[23] = high[1]


# Rows of the matrix that are log1p of a value (the stateless ones first, then STATEFUL).
_LOG_ROWS = np.array([*range(7), 9, 10, 26, 27], dtype=np.intp)  # an array indexes faster than a list
_LOG_AT = tuple(_LOG_ROWS.tolist())
_LOGGED = 9
_PROTOS = {"tcp": 0, "udp": 1, "icmp": 2, "icmp6": 2}
_PROTO_ONEHOT = np.eye(4)  # tcp, udp, icmp, other
_WEB_PORTS, _SERVICE_PORTS = (tuple(float(p) for p in sorted(ports)) for ports in (WEB_PORTS, SERVICE_PORTS))


def _proto_classes(protos: list[str]) -> npt.NDArray[np.intp]:
    """Each flow's protocol class (a row of _PROTO_ONEHOT), looked up once per distinct text."""
    classes = {p: _PROTOS.get(p.lower(), 3) for p in set(protos)}
    return np.fromiter(map(classes.__getitem__, protos), np.intp, len(protos))


def _tcp_flags(flows: Sequence[object], out: F64) -> None:
    """``out`` ``[2, n]``: FIN / RST seen: Zeek history letters (either case) or CICFlowMeter flag counts."""
    # Zeek's verdict per distinct (history, conn_state) pair; None: the record has neither.
    history, state = column(flows, "history"), column(flows, "conn_state")
    stats = cic_statistics(flows, READ_STATISTICS)
    if history.count(None) == len(flows) and state.count(None) == len(flows):  # CICFlowMeter only
        # Compared straight into out's rows: a small batch pays per numpy call, not per flow.
        np.greater(stats[:, 0], 0.0, out=out[0])
        np.greater(stats[:, 1] + stats[:, 2] + stats[:, 3], 0.0, out=out[1])
        return
    fin, rst = stats[:, 0] > 0, (stats[:, 1] + stats[:, 2] + stats[:, 3]) > 0
    pairs, inverse = factorize(list(zip(history, state, strict=True)))
    verdicts = np.array([_zeek_flags(h, s) for h, s in pairs]).reshape(-1, 3)[inverse]
    has_zeek = verdicts[:, 0] > 0
    out[0], out[1] = np.where(has_zeek, verdicts[:, 1], fin), np.where(has_zeek, verdicts[:, 2], rst)


def _zeek_flags(history: str | None, conn_state: str | None) -> tuple[bool, bool, bool]:
    if history is None and conn_state is None:
        return False, False, False
    hist, state = (history or "").lower(), (conn_state or "").lower()
    return True, "f" in hist or state == "sf", "r" in hist or state in _RST_STATES


def cic_statistics(flows: Sequence[object], names: tuple[str, ...]) -> F64:
    """``[n, len(names)]``: CICFlowMeter statistics over the batch (0.0 where a record does
    not carry one), read from views in one C-level pass (or by the native scanner)."""
    kept = kept_statistics(flows) if names == READ_STATISTICS else None  # the native rows' columns
    return statistics(column(flows, "extra"), names) if kept is None else kept
