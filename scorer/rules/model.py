"""What a rule pack holds: rule metadata, the compiled IR, failures.

The IR is what :func:`scorer.rules.compile.compile_rules` produces from Sigma YAML and what
:class:`scorer.rules.engine.RuleEngine` evaluates, with no pySigma at run time:

* **atoms**: ``(field, kind, pattern, cased)`` tests on one field of an event, deduplicated
  across every rule of the pack (``Image endswith \\cmd.exe`` is one atom however many
  rules name it). ``field`` is a column key (:mod:`scorer.rules.fields`), ``kind`` one of
  :data:`KINDS`; ``pattern`` is lower-cased unless ``cased``.
* **conditions**: per rule, a list of *variants* ``(logsource, detection)``, each a tree over
  atom ids: an ``int`` (atom), ``True``/``False``, or ``["and"|"or", *trees]`` /
  ``["not", tree]``. A rule fires where any variant's ``logsource and detection`` holds; a
  process-creation rule has one variant for Sysmon (EventID 1) and one for Security 4688.
  ``logsource`` holds only Channel / EventID tests: the engine evaluates it first and skips
  the rule for a batch where it matches nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

# Atom kinds. Strings: eq / contains / startswith / endswith (case-insensitive unless cased),
# re (RE2, search), cidr, lt/lte/gt/gte (numbers), exists (field present), null (absent or
# empty), fieldref (equal to the field named by pattern).
KINDS = ("eq", "contains", "startswith", "endswith", "re", "cidr", "lt", "lte", "gt", "gte",
         "exists", "null", "fieldref")
LEVELS = ("informational", "low", "medium", "high", "critical")
RULE_KINDS = {"rules": "detection", "rules-threat-hunting": "hunting", "rules-emerging-threats": "emerging"}
IR_FORMAT = 1

Tree = int | bool | list[Any]
Variant = tuple[Tree, Tree]


@dataclass(frozen=True)
class RuleMeta:
    """One rule of a pack; its index in ``RuleEngine.rules`` is the rule number."""

    id: str
    title: str
    level: str  # informational | low | medium | high | critical
    status: str
    author: str
    date: str
    file: str  # relative to the rules source root
    tags: tuple[str, ...]
    tactics: tuple[str, ...]  # ATT&CK tactics from attack.<tactic> tags, e.g. "credential_access"
    techniques: tuple[str, ...]  # "T1003.001" from attack.t1003.001
    kind: str  # detection | hunting | emerging
    logsource: str  # e.g. "windows/process_creation", "windows/security"
    # False when the pack's tuning keeps the rule as evidence and a model feature only: a
    # high or critical rule the tuning names raises no alert on its own (scorer.rules.tuning).
    alerts: bool = True

    def __hash__(self) -> int:
        # Tuples of a pack's rules key the cache of findings' rule parts: the id tells rules
        # apart, and hashing every field took ~0.5 us a rule per alert. Equality compares all.
        return hash(self.id)

    def to_json(self) -> dict[str, Any]:
        # ``alerts`` only where tuning cleared it: an untuned pack's manifest reads as before.
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()
                if k != "alerts" or not v}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RuleMeta:
        names = cls.__dataclass_fields__
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        return cls(**kwargs)


@dataclass(frozen=True)
class RuleFailure:
    """A rule raised on an event: the event is isolated (dead letter naming the rule)."""

    rule_id: str
    message: str


@dataclass
class RuleHits:
    hits: list[tuple[int, ...]]  # per event, aligned with the input: sorted rule numbers that fired
    errors: dict[int, RuleFailure] = field(default_factory=dict)  # event index -> failure; its hits are ()


@dataclass(frozen=True)
class CompileError:
    """A rule that cannot be compiled, and why."""

    file: str
    rule_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


class Atom(msgspec.Struct, frozen=True, gc=False):
    """A test on one field (a frozen Struct, not a dataclass: a pack makes ~30,000 at every
    load, and a frozen dataclass's ``__init__`` was ~1 us of setattr calls each)."""

    field: str
    kind: str
    pattern: str
    cased: bool = False

    def key(self) -> tuple[str, str, str, bool]:
        return (self.field, self.kind, self.pattern, self.cased)


@dataclass(frozen=True)
class RuleSource:
    """A rule's YAML as packed: attribution (author, licence) travels with it."""

    file: str
    sha256: str
    yaml: str


@dataclass
class CompiledRules:
    """The output of the compiler: rules (aligned with ``conditions``), atoms, sources."""

    rules: list[RuleMeta] = field(default_factory=list)
    atoms: list[Atom] = field(default_factory=list)
    conditions: list[list[Variant]] = field(default_factory=list)
    sources: list[RuleSource] = field(default_factory=list)

    def ir_json(self) -> dict[str, Any]:
        """The IR part, as stored in the pack (``ir.json.gz``)."""
        return {
            "format": IR_FORMAT,
            "atoms": [list(a.key()) for a in self.atoms],
            "rules": [[r.id, [[ls, det] for ls, det in variants]]
                      for r, variants in zip(self.rules, self.conditions, strict=True)],
        }


def atoms_from_json(data: list[list[Any]]) -> list[Atom]:
    return [Atom(str(f), str(k), str(p), bool(c)) for f, k, p, c in data]


def conditions_from_json(data: list[list[Any]]) -> tuple[list[str], list[list[Variant]]]:
    ids = [str(rule_id) for rule_id, _ in data]
    conds = [[(ls, det) for ls, det in variants] for _, variants in data]
    return ids, conds


# ATT&CK Enterprise tactics (v18 split defense evasion into stealth and defense impairment).
TACTICS = frozenset({
    "reconnaissance", "resource_development", "initial_access", "execution", "persistence",
    "privilege_escalation", "defense_evasion", "stealth", "defense_impairment", "credential_access",
    "discovery", "lateral_movement", "collection", "command_and_control", "exfiltration", "impact",
})
_TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$", re.IGNORECASE)


def tactics_of(tags: tuple[str, ...]) -> tuple[str, ...]:
    """ATT&CK tactics of Sigma tags, as ATT&CK names them with underscores.

    >>> tactics_of(("attack.credential-access", "attack.t1003.001", "attack.s0002"))
    ('credential_access',)
    """
    out: list[str] = []
    for tag in tags:
        namespace, _, name = tag.partition(".")
        tactic = name.lower().replace("-", "_")
        if namespace.lower() == "attack" and tactic in TACTICS and tactic not in out:
            out.append(tactic)
    return tuple(out)


def techniques_of(tags: tuple[str, ...]) -> tuple[str, ...]:
    """ATT&CK technique ids of Sigma tags.

    >>> techniques_of(("attack.credential-access", "attack.t1003.001", "attack.T1059"))
    ('T1003.001', 'T1059')
    """
    out: list[str] = []
    for tag in tags:
        namespace, _, name = tag.partition(".")
        if namespace.lower() == "attack" and _TECHNIQUE.match(name) and name.upper() not in out:
            out.append(name.upper())
    return tuple(out)
