"""SIEM features: what the alert says (rule name tokens, source system, severity) and how
novel or bursty it is on its host (per-host rule rate, first-seen, distinct rules).

Rule names are hashed as a bag of lower-case words so unseen rules of a known shape
("... 400 error code", "New ... in ... log") still land near their relatives; the host
name itself is never a feature. Per-host state is bounded and updated in event-time order.
"""

from __future__ import annotations

import math
import re
from collections import Counter, deque
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from scorer.events.structs import Event, EventKind, SiemAlert
from scorer.features.base import (
    F32,
    F64,
    alternation,
    column,
    group_names,
    numbers,
    only,
    stable_hash,
)
from scorer.features.edr_batch import RAW, TUPLE, Group, Plan
from scorer.features.entity_state import entity_rows, entity_windows
from scorer.features.sheet import Sheet
from scorer.features.texts import Texts, factorize, text_memo

TOKEN_BUCKETS = 64
WINDOW_S = 60.0
MAX_WINDOW_ALERTS = 4096  # per host: bounds memory under an alert storm
MAX_RULES_PER_HOST = 4096
NEVER_S = 86_400.0  # "not seen before" reads as one day ago
_WORD = re.compile(r"[a-z0-9_]{2,}")

SYSTEMS = ("wazuh", "suricata", "aminer", "zeek", "sigma")
KEYWORDS: dict[str, tuple[str, ...]] = {
    "scan": ("scan", "nmap", "probe", "sweep", "enumerat"),
    "brute": ("brute", "multiple", "failed", "failure", "invalid user", "authentication fail"),
    "attack": ("attack", "exploit", "injection", "shellcode", "trojan", "malware", "webshell",
               "sql", "xss", "overflow", "cve"),
    "privilege": ("sudo", "root", "privilege", "uid", "admin", "su "),
    "session": ("login", "logon", "session", "ssh"),
    "anomaly": ("new ", "unusual", "entropy", "deviat", "out of expected", "frequenc"),
    "web": ("web", "http", "apache", "nginx", "url", "request"),
    "http_error": ("400", "404", "403", "500", "error code"),
    "dns": ("dns", "domain", "query"),
    "system": ("clamav", "update", "database", "integrity", "checksum", "service"),
}
SYSTEM_NAMES = group_names("sys_", [*SYSTEMS, "other"])
KEYWORD_NAMES = group_names("kw_", KEYWORDS)
TOKEN_NAMES = group_names("tok_", map(str, range(TOKEN_BUCKETS)))
STATEFUL = (
    "host_rule_60s", "host_alerts_60s", "host_rules_60s", "host_rule_first_seen",
    "log_since_rule_s", "host_rule_share_60s",
)


class _HostWindow:
    """Alerts of one host over the last WINDOW_S seconds plus when each rule was last seen."""

    __slots__ = ("alerts", "last_seen", "rules")

    def __init__(self) -> None:
        self.alerts: deque[tuple[float, str]] = deque()
        self.rules: Counter[str] = Counter()
        self.last_seen: dict[str, float] = {}

    def add(self, ts: float, rule: str) -> tuple[float, ...]:
        # Runs once per alert: locals and dict.get instead of Counter's Python-level __missing__.
        alerts, rules, last_seen = self.alerts, self.rules, self.last_seen
        while alerts and (alerts[0][0] < ts - WINDOW_S or len(alerts) >= MAX_WINDOW_ALERTS):
            _, old = alerts.popleft()
            left = rules[old] - 1
            if left <= 0:
                del rules[old]
            else:
                rules[old] = left
        previous = last_seen.get(rule)
        if previous is None and len(last_seen) >= MAX_RULES_PER_HOST:
            last_seen.pop(next(iter(last_seen)))  # oldest inserted rule goes
        last_seen[rule] = ts if previous is None else max(previous, ts)
        alerts.append((ts, rule))
        same = rules[rule] = rules.get(rule, 0) + 1
        since = NEVER_S if previous is None else min(max(ts - previous, 0.0), NEVER_S)
        total = len(alerts)
        return (math.log1p(same), math.log1p(total), math.log1p(len(rules)),
                float(previous is None), math.log1p(since), same / total)


class SiemFeatures:
    """Features of :class:`SiemAlert` batches (stateful: per-host 60 s window, first-seen)."""

    kind = EventKind.SIEM
    names: tuple[str, ...] = (*SYSTEM_NAMES, "has_severity", "severity", *KEYWORD_NAMES,
                              *STATEFUL, *TOKEN_NAMES)

    def __init__(self, max_entities: int = 50_000) -> None:
        self.state = entity_windows(_HostWindow, max_entities, 1, WINDOW_S, MAX_WINDOW_ALERTS, MAX_RULES_PER_HOST,
                                    NEVER_S)
        self.plan = Plan(GROUPS, self.names, SiemAlert)

    def transform(self, events: Sequence[Event]) -> F32:
        # The text and severity columns in one native pass (the EDR sets' Plan; a 16-alert batch
        # paid ~15 Python and numpy calls for them), else the reference below.
        sheet = self.plan.sheet(events)
        if sheet is None:
            return self._reference(events)
        rules = column(events, "rule_id")
        # The reference's rule key: the lower-case name, where an alert has no id.
        lower = [] if all(rules) else [name.lower() for name in column(events, "rule_name")]
        self._stateful(events, rules, lower, None, (sheet.out, sheet.at[STATEFUL[0]]))
        return sheet.matrix()

    def _reference(self, events: Sequence[Event]) -> F32:
        only(events, (SiemAlert,), "SiemFeatures.transform")
        alerts, n = events, len(events)
        # Rule names and systems repeat heavily: their columns are a row of values per
        # distinct text, placed at every alert holding it by one (native) pass of the Sheet;
        # a small batch pays per call, not per value.
        sheet = Sheet(self.names, n)
        names = Texts(column(alerts, "rule_name"))
        lower = [v.lower() for v in names.distinct]
        inverse = None if names.identity else names.inverse
        texts = list(map(_cached_rows, lower))
        sheet.put_rows(KEYWORD_NAMES[0], len(KEYWORDS), inverse, [keywords for keywords, _ in texts])
        sheet.put_rows(TOKEN_NAMES[0], TOKEN_BUCKETS, inverse, [tokens for _, tokens in texts])
        system = Texts(column(alerts, "source_system"))
        sheet.put_rows(SYSTEM_NAMES[0], len(SYSTEM_NAMES), None if system.identity else system.inverse,
                       [_SYSTEM_ONEHOT[_SYSTEM_CLASS.get(s.lower(), len(SYSTEMS))] for s in system.distinct])
        # has_severity, severity: a row per distinct severity (a few a batch; numpy's four calls
        # cost more than the values at a small batch).
        levels, at = factorize(numbers(alerts, "severity", -1.0).tolist())
        sheet.put_rows("has_severity", 2, at, list(map(_severity_row, levels)))
        sheet.put_block(STATEFUL[0], self._stateful(alerts, column(alerts, "rule_id"), lower, names.inverse))
        return sheet.matrix()

    def _stateful(self, alerts: Sequence[Event], rules: list[str | None], lower: list[str],
                  inverse: npt.NDArray[np.intp] | None, into: tuple[F64, int] | None = None) -> F64:
        # Per host (its IP when the alert names none), per rule (its lower-case name when it has
        # no id: ``lower[inverse[i]]``, or ``lower[i]`` without an inverse); a Python pass per alert
        # only where some alert lacks the first.
        keys = column(alerts, "host")
        if not all(keys):
            keys = [h or ip or "" for h, ip in zip(keys, column(alerts, "src_ip"), strict=True)]
        if not all(rules):
            at = range(len(rules)) if inverse is None else inverse.tolist()
            rules = [r or lower[j] for r, j in zip(rules, at, strict=True)]
        return entity_rows(self.state, keys, column(alerts, "ts"), rules, width=len(STATEFUL), into=into)


def _severity_row(level: float) -> tuple[float, float]:
    """has_severity, and the level clipped to [0, 15] over 15, as ``np.clip`` and ``np.divide``
    compute it (``x > 0 ? x : 0``, then ``x < 15 ? x : 15``: -0.0 reads 0.0); ``level`` is finite
    (:func:`scorer.features.base.numbers` reads the others as the default)."""
    clipped = level if level > 0.0 else 0.0
    return float(level >= 0), (clipped if clipped < 15.0 else 15.0) / 15.0


def _system_row(system: tuple[str]) -> tuple[float, ...]:
    """The one-hot row of a source system (a TUPLE group's key: "" is "other", not zeros)."""
    return _SYSTEM_ONEHOT[_SYSTEM_CLASS.get(system[0].lower(), len(SYSTEMS))]


def _keyword_row(name: str) -> tuple[float, ...]:
    return _cached_rows(name.lower())[0]


def _token_row(name: str) -> tuple[float, ...]:
    return _cached_rows(name.lower())[1]


_SYSTEM_CLASS = {s: i for i, s in enumerate(SYSTEMS)}
# Each system's one-hot row: the known systems, then "other".
_SYSTEM_ONEHOT = tuple(tuple(float(i == j) for j in range(len(SYSTEM_NAMES))) for i in range(len(SYSTEM_NAMES)))
_KEYWORD_SEARCHES = tuple(alternation(needles).search for needles in KEYWORDS.values())


def _text_rows(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A (lower-case) rule name's keyword flags and hashed word tokens."""
    tokens = [0.0] * TOKEN_BUCKETS
    for token in _WORD.findall(name):
        tokens[stable_hash(token) % TOKEN_BUCKETS] = 1.0
    return tuple(1.0 if search(name) else 0.0 for search in _KEYWORD_SEARCHES), tuple(tokens)


# A stream's rule names are few and recur in every batch: ten keyword searches and the tokens
# once per name.
_cached_rows = text_memo(_text_rows, longest=512)
# The reference's columns but the stateful ones, as the native pass runs them: 'r' parts (a name
# or system that is not a text is refused, as the reference's ``lower`` raises on it).
GROUPS = (
    Group(SYSTEM_NAMES[0], len(SYSTEM_NAMES), _system_row, (("r", "source_system"),), TUPLE),
    Group("has_severity", 2, _severity_row, (("n", "severity"),), RAW),
    Group(KEYWORD_NAMES[0], len(KEYWORDS), _keyword_row, (("r", "rule_name"),)),
    Group(TOKEN_NAMES[0], TOKEN_BUCKETS, _token_row, (("r", "rule_name"),)),
)


__all__ = ["SiemFeatures"]
