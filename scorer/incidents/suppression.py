"""Analyst suppression rules: findings they match stay out of incidents, still published.

A rule names an entity (``host:ws1``, ``ip:10.0.0.5``, ``user:alice`` or ``*``) and what
to mute on it: a detection rule id, a model name, or a kind; a time window on the
findings' own time (``start``/``end``, epoch seconds, either open); an ``expires`` moment
after which the rule no longer applies to anything (wall clock: it is an analyst's
decision about now, not about event time); and a ``reason`` that goes on every finding it
mutes. Rules come from a compacted topic (key = rule id, a tombstone deletes) and/or a
JSON/YAML file; malformed rules are refused with the reason, never half-applied.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from .model import Member


class SuppressionRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    entity: str  # "host:ws1", "ip:10.0.0.5", "user:alice", or "*" for any
    reason: str
    rule: str = ""  # a detection rule id (related_analytics of type Rule)
    model: str = ""  # a model name (finding_info.analytic.name)
    kind: str = ""  # netflow / edr / siem
    start: float = -math.inf  # finding time window, epoch seconds
    end: float = math.inf
    expires: float = math.inf  # wall-clock epoch seconds
    created_by: str = ""

    def matches(self, member: Member, now_s: float) -> bool:
        if now_s >= self.expires or not self.start <= member.time_ms / 1000 < self.end:
            return False
        if self.rule and self.rule not in member.rules:
            return False
        if self.model and self.model != member.model:
            return False
        if self.kind and self.kind != member.kind:
            return False
        return self.entity == "*" or self.entity in _entities_of(member)


def _entities_of(member: Member) -> set[str]:
    return ({f"host:{h}" for h in member.hosts} | {f"ip:{ip}" for ip in member.ips}
            | {f"user:{u.lower()}" for u in member.users} | {member.key})


class InvalidRule(ValueError):
    pass


def parse_rule(value: Mapping[str, Any] | bytes) -> SuppressionRule:
    """One rule from JSON bytes or a mapping; :class:`InvalidRule` says what is wrong."""
    try:
        rule = (msgspec.json.decode(value, type=SuppressionRule) if isinstance(value, bytes)
                else msgspec.convert(value, SuppressionRule))
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidRule(str(exc)) from None
    if not rule.id or not rule.reason:
        raise InvalidRule("a suppression rule needs an id and a reason")
    if rule.entity == "*":
        if not (rule.rule or rule.model or rule.kind):
            raise InvalidRule(f"rule {rule.id}: '*' must name a rule, model or kind (it would mute everything)")
        return rule
    scope, _, name = rule.entity.partition(":")
    scope = scope.lower()
    if scope not in ("host", "ip", "user") or not name:
        raise InvalidRule(f"rule {rule.id}: entity must be host:NAME, ip:ADDR, user:NAME or *")
    # Host and user names compare case-insensitively, as the digest keeps them.
    return msgspec.structs.replace(rule, entity=f"{scope}:{name if scope == 'ip' else name.lower()}")


def load_file(path: Path) -> list[SuppressionRule]:
    """Rules from a JSON or YAML file holding a list of rules."""
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, list):
        raise InvalidRule(f"{path}: expected a list of rules")
    return [parse_rule(r) for r in raw]


class Suppressions:
    """The rules in force, by id."""

    def __init__(self, rules: Iterable[SuppressionRule] = ()) -> None:
        self.rules: dict[str, SuppressionRule] = {r.id: r for r in rules}

    def put(self, rule_id: str, rule: SuppressionRule | None) -> None:
        """Add or replace a rule; None deletes it (a tombstone on the topic)."""
        if rule is None:
            self.rules.pop(rule_id, None)
        else:
            self.rules[rule_id] = rule

    def match(self, member: Member, now_s: float) -> SuppressionRule | None:
        for rule in self.rules.values():
            if rule.matches(member, now_s):
                return rule
        return None
