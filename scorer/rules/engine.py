"""Every rule of a pack on every event of a micro-batch, vectorised over the batch.

A batch of ``n`` events is a set of rows; a set of rows is a Python int used as a bitset
(bit ``r`` = row ``r``), so ``and``/``or``/``not`` over the whole batch are one big-int
operation each. :meth:`RuleEngine.evaluate`:

1. evaluates the logsource atoms (Channel, EventID) over all rows, then each distinct
   logsource tree of the pack: rules whose logsource matches no row of the batch are not
   looked at again;
2. for every field some remaining rule names, reads the field's column over the rows those
   rules' logsources selected, groups it by distinct value and runs the field's
   :class:`~scorer.rules.matchers.FieldMatcher` once per distinct value; each atom gets the
   rows (bitset) of the values that satisfied it;
3. evaluates each remaining rule's detection tree over atom bitsets, narrowed by its
   logsource rows (an ``and`` stops at an empty set).

No loop runs over rules x events: per event, only column reads and grouping.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scorer.events.structs import EndpointEvent
from scorer.rules.fields import Getter, getter
from scorer.rules.matchers import FieldMatcher
from scorer.rules.model import Atom, RuleFailure, RuleHits, RuleMeta, Tree, Variant


class RuleEngine:
    """A loaded rule pack: :meth:`load` it once, :meth:`evaluate` every batch."""

    rules: tuple[RuleMeta, ...]

    def __init__(self, rules: Sequence[RuleMeta], atoms: Sequence[Atom],
                 conditions: Sequence[Sequence[Variant]]) -> None:
        if len(rules) != len(conditions):
            raise ValueError(f"{len(rules)} rules but {len(conditions)} conditions")
        self.rules = tuple(rules)
        self.atoms = tuple(atoms)
        ls_index: dict[str, int] = {}
        self.ls_trees: list[Tree] = []
        # (rule number, logsource index, detection tree), grouped by logsource below.
        self.variants: list[tuple[int, int, Tree]] = []
        ls_fields: list[set[str]] = []
        self.field_rule: dict[str, str] = {}  # a rule naming the field, for a failure's report
        for number, variants in enumerate(conditions):
            for ls, det in variants:
                key = json.dumps(ls)
                if key not in ls_index:
                    ls_index[key] = len(self.ls_trees)
                    self.ls_trees.append(ls)
                    ls_fields.append(set())
                index = ls_index[key]
                self.variants.append((number, index, det))
                for aid in _atom_ids(det):
                    atom = self.atoms[aid]
                    for name in (atom.field, atom.pattern) if atom.kind == "fieldref" else (atom.field,):
                        ls_fields[index].add(name)
                        self.field_rule.setdefault(name, self.rules[number].id)
        self.ls_fields = [tuple(sorted(f)) for f in ls_fields]
        self.head_fields = tuple(sorted({self.atoms[a].field for t in self.ls_trees for a in _atom_ids(t)}))
        by_field: dict[str, list[tuple[int, Atom]]] = {}
        self.fieldrefs: dict[str, list[tuple[int, str]]] = {}
        for aid, atom in enumerate(self.atoms):
            if atom.kind == "fieldref":
                self.fieldrefs.setdefault(atom.field, []).append((aid, atom.pattern))
            else:
                by_field.setdefault(atom.field, []).append((aid, atom))
        self.matchers = {name: FieldMatcher(atoms) for name, atoms in by_field.items()}
        self.getters: dict[str, Getter] = {name: getter(name) for name in {*by_field, *self.fieldrefs,
                                                                           *(p for r in self.fieldrefs.values()
                                                                             for _, p in r)}}
        self._bits: list[int] = []

    @classmethod
    def load(cls, pack_dir: Path) -> RuleEngine:
        """The pack in ``pack_dir``, checksums verified (no pySigma: the IR is compiled)."""
        from scorer.rules.pack import read_pack

        pack = read_pack(pack_dir)
        return cls(pack.rules, pack.atoms, pack.conditions)

    def evaluate(self, events: Sequence[EndpointEvent]) -> RuleHits:
        """Rule numbers that fired, per event. Never raises for a bad event: an event a rule
        raised on gets no hits and a :class:`RuleFailure` naming the rule."""
        try:
            return self._evaluate(events)
        except Exception:
            pass
        # Something in the batch made the engine raise: find the events, one by one.
        hits: list[tuple[int, ...]] = []
        errors: dict[int, RuleFailure] = {}
        for i, event in enumerate(events):
            try:
                hits.append(self._evaluate([event]).hits[0])
            except Exception as exc:
                hits.append(())
                errors[i] = RuleFailure(getattr(exc, "rule_id", ""), f"{type(exc).__name__}: {exc}")
        return RuleHits(hits, errors)

    def _evaluate(self, events: Sequence[EndpointEvent]) -> RuleHits:
        n = len(events)
        if n == 0:
            return RuleHits([], {})
        if len(self._bits) < n:
            self._bits = [1 << r for r in range(n)]
        full = (1 << n) - 1
        amask: dict[int, int] = {}
        errors: dict[int, RuleFailure] = {}
        for name in self.head_fields:
            self._field(events, name, full, n, amask, errors)
        ls_masks = [_eval(tree, amask, full) for tree in self.ls_trees]
        field_rows: dict[str, int] = {}
        for index, mask in enumerate(ls_masks):
            if mask:
                for name in self.ls_fields[index]:
                    field_rows[name] = field_rows.get(name, 0) | mask
        for name, rows in field_rows.items():
            if name not in self.head_fields:
                self._field(events, name, rows, n, amask, errors)
        rule_masks: dict[int, int] = {}
        for number, index, det in self.variants:
            scope = ls_masks[index]
            if scope:
                fired = _eval(det, amask, scope)
                if fired:
                    rule_masks[number] = rule_masks.get(number, 0) | fired
        per_row: list[list[int]] = [[] for _ in range(n)]
        for number in sorted(rule_masks):
            for r in _rows(rule_masks[number], n):
                per_row[r].append(number)
        hits = [() if i in errors else tuple(row) for i, row in enumerate(per_row)]
        return RuleHits(hits, errors)

    def _field(self, events: Sequence[EndpointEvent], name: str, rows: int, n: int,
               amask: dict[int, int], errors: dict[int, RuleFailure]) -> None:
        get = self.getters[name]
        bits = self._bits
        groups: dict[str, int] = {}
        missing = 0
        for r in _rows(rows, n):
            value = get(events[r])
            if value is None:
                missing |= bits[r]
            else:
                groups[value] = groups.get(value, 0) | bits[r]
        matcher = self.matchers.get(name)
        if matcher is not None:
            for aid in matcher.missing:
                amask[aid] = amask.get(aid, 0) | missing
            for value, mask in groups.items():
                try:
                    found = matcher.match(value)
                except Exception as exc:  # isolate the rows with this value, not the batch
                    for r in _rows(mask, n):
                        errors[r] = RuleFailure(self.field_rule.get(name, ""), f"{name}: {type(exc).__name__}: {exc}")
                    continue
                for aid in found:
                    amask[aid] = amask.get(aid, 0) | mask
        for aid, other in self.fieldrefs.get(name, ()):
            get_other = self.getters[other]
            hit = 0
            for value, mask in groups.items():
                for r in _rows(mask, n):
                    second = get_other(events[r])
                    if second is not None and second.lower() == value.lower():
                        hit |= bits[r]
            amask[aid] = amask.get(aid, 0) | hit


def _rows(mask: int, n: int) -> Sequence[int]:
    """Row numbers of the set bits of ``mask``."""
    if mask == (1 << n) - 1:
        return range(n)
    if mask & (mask - 1) == 0:
        return [mask.bit_length() - 1] if mask else []
    packed = np.frombuffer(mask.to_bytes((n + 7) // 8, "little"), dtype=np.uint8)
    rows: list[int] = np.flatnonzero(np.unpackbits(packed, bitorder="little")).tolist()
    return rows


def _eval(tree: Tree, amask: dict[int, int], scope: int) -> int:
    """Rows of ``scope`` where ``tree`` holds."""
    if isinstance(tree, bool):
        return scope if tree else 0
    if isinstance(tree, int):
        return amask.get(tree, 0) & scope
    op = tree[0]
    if op == "and":
        for arg in tree[1:]:
            scope = _eval(arg, amask, scope)
            if not scope:
                break
        return scope
    if op == "or":
        out = 0
        for arg in tree[1:]:
            out |= _eval(arg, amask, scope & ~out)
            if out == scope:
                break
        return out
    if op == "not":
        return scope & ~_eval(tree[1], amask, scope)
    raise ValueError(f"unknown condition operator {op!r}")


def _atom_ids(tree: Any) -> list[int]:
    if isinstance(tree, bool):
        return []
    if isinstance(tree, int):
        return [tree]
    return [a for arg in tree[1:] for a in _atom_ids(arg)]
