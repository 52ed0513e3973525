"""What a rule pack's engine evaluates with, built once when the pack is loaded.

:class:`PackIndex` turns a pack's rules, atoms and condition trees into what every batch
reads: the distinct logsource trees and the variants grouped under them, each tree's
trigger atoms (:class:`~scorer.rules.bitsets.Triggers`), the trees flat for the C walk
(or compiled), one :class:`~scorer.rules.matchers.FieldMatcher` per field and per
logsource's keywords, the head pass, and how each field is read (in Python or by the C
pass). :class:`scorer.rules.engine.RuleEngine` is a PackIndex with the per-batch
evaluation; building it is a pack's load time (docs/benchmarks.md section 59), so each tree
is walked once here for everything that reads its atoms.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

import scorer.native
from scorer.rules.bitsets import FlatTree, Triggers, atom_ids, flat_tree
from scorer.rules.compiled_trees import Compiled, Deferred, compile_tree
from scorer.rules.fields import (
    CANONICAL,
    KEYWORDS,
    Column,
    Getter,
    canonical_column_reader,
    column_reader,
    getter,
    native_get,
    native_read,
    raw_column_reader,
)
from scorer.rules.heads import Heads
from scorer.rules.matchers import FieldMatcher
from scorer.rules.model import Atom, RuleMeta, Tree, Variant

# A logsource tree's JSON: the key its variants are grouped by (msgspec's: json.dumps cost ~5 us a variant).
_KEY = msgspec.json.Encoder().encode
# How scorer.native._rules.fold_many reads a field: (attribute, how, cache of matched values
# (None: no matcher), atoms of a missing value, fieldrefs (atom, other field, its attribute, how)).
Read = tuple[str | None, int, dict[str, list[int]] | None, list[int], tuple[tuple[int, str, str | None, int], ...]]


class PackIndex:
    """A pack's rules, atoms and conditions, indexed for evaluation over micro-batches."""

    rules: tuple[RuleMeta, ...]

    def __init__(self, rules: Sequence[RuleMeta], atoms: Sequence[Atom],
                 conditions: Sequence[Sequence[Variant]]) -> None:
        if len(rules) != len(conditions):
            raise ValueError(f"{len(rules)} rules but {len(conditions)} conditions")
        self.rules = tuple(rules)
        self.atoms = tuple(atoms)
        ls_index: dict[bytes, int] = {}
        self.ls_trees: list[Tree] = []
        # (rule number, logsource index, detection tree), grouped by logsource below.
        self.variants: list[tuple[int, int, Tree]] = []
        variant_atoms: list[set[int]] = []  # each variant's atoms, walked once for all that reads them
        ls_fields: list[set[str]] = []
        self.field_rule: dict[str, str] = {}  # a rule naming the field, for a failure's report
        names_of = [(a.field, a.pattern) if a.kind == "fieldref" else (a.field,) for a in self.atoms]
        for number, variants in enumerate(conditions):
            for ls, det in variants:
                key = _KEY(ls)  # the logsource's JSON, a dict key only
                if key not in ls_index:
                    ls_index[key] = len(self.ls_trees)
                    self.ls_trees.append(ls)
                    ls_fields.append(set())
                index = ls_index[key]
                self.variants.append((number, index, det))
                ids = set(atom_ids(det))
                variant_atoms.append(ids)
                names = {name for aid in ids for name in names_of[aid]}
                ls_fields[index] |= names
                for name in names - self.field_rule.keys():
                    self.field_rule[name] = self.rules[number].id
        # Keywords (field "*": the event's whole text) are long to search: each logsource
        # group searches only its own rules' keywords, on its own rows.
        kw_atoms: dict[int, set[int]] = {}
        for (_, index, _), ids in zip(self.variants, variant_atoms, strict=True):
            kw = [a for a in ids if self.atoms[a].field == KEYWORDS]
            if kw:
                kw_atoms.setdefault(index, set()).update(kw)
        # (ascending: a batch's groups are its live logsources that have one, in this order)
        self.keyword_groups = {index: FieldMatcher((a, self.atoms[a]) for a in sorted(ids))
                               for index, ids in sorted(kw_atoms.items())}
        for f in ls_fields:
            f.discard(KEYWORDS)
        self.ls_fields = [tuple(sorted(f)) for f in ls_fields]
        # A variant can only fire where one of its trigger atoms matched: variants are looked
        # at when an atom of theirs matched in the batch (or always, when no such set exists);
        # the same for the logsource trees.
        self.variant_triggers = Triggers((det for _, _, det in self.variants), variant_atoms)
        self.ls_triggers = Triggers(self.ls_trees)
        self.untriggered: dict[int, list[int]] = {}  # logsource -> its variants without trigger atoms
        for vi in self.variant_triggers.always:
            self.untriggered.setdefault(self.variants[vi][1], []).append(vi)
        # Trees as compiled functions at load (compiling one in the hot path would put its ~100-170
        # us into that batch's latency), but for the variants where the C pass walks their flat
        # trees instead (_rules.fire): there a variant compiles only if it is ever called.
        self.ls_code = [compile_tree(tree) for tree in self.ls_trees]
        native = scorer.native.module("_rules") is not None
        self._code: list[Compiled] = [Deferred(det) if native else compile_tree(det) for _, _, det in self.variants]
        self._flat: list[FlatTree] = [flat_tree(det) for _, _, det in self.variants]  # (for _rules.fire)
        self.rule_of = [number for number, _, _ in self.variants]  # per variant, its rule and logsource
        self.ls_of = [index for _, index, _ in self.variants]
        self.head_fields = tuple(sorted({self.atoms[a].field for t in self.ls_trees for a in atom_ids(t)}))
        by_field: dict[str, list[tuple[int, Atom]]] = {}
        self.fieldrefs: dict[str, list[tuple[int, str]]] = {}
        for aid, atom in enumerate(self.atoms):
            if atom.field == KEYWORDS:
                continue
            if atom.kind == "fieldref":
                self.fieldrefs.setdefault(atom.field, []).append((aid, atom.pattern))
            else:
                by_field.setdefault(atom.field, []).append((aid, atom))
        self.matchers = {name: FieldMatcher(atoms) for name, atoms in by_field.items()}
        self.heads = Heads(self.head_fields, self.matchers, self.ls_triggers, self.ls_code)
        self.head_set = frozenset(self.head_fields)
        # Each logsource's fields but the head fields (read by the head pass), made once.
        self.ls_rest = [tuple(name for name in names if name not in self.head_set) for names in self.ls_fields]
        self.missing = {name: m.missing for name, m in self.matchers.items() if m.missing}
        names = {*by_field, *self.fieldrefs, *(p for refs in self.fieldrefs.values() for _, p in refs)}
        self.getters: dict[str, Getter] = {name: getter(name) for name in names}
        self.columns: dict[str, Column] = {name: column_reader(name) for name in names}
        self.raw_columns = {name: raw for name in names if (raw := raw_column_reader(name)) is not None}
        self.alias_columns = {name: raw for name in names if (raw := canonical_column_reader(name)) is not None}
        # How the C pass reads each field with a matcher or fieldrefs, and reads the fieldrefs'
        # other fields (a field whose fieldrefs it cannot read: Python's own pass).
        # Values repeat across batches (paths, hashes, product names): their atoms, remembered.
        self._seen: dict[str, dict[str, list[int]]] = {name: {} for name in self.matchers}
        self.reads: dict[str, Read] = {}
        for name in (*self.matchers, *self.fieldrefs):
            refs = tuple((aid, other, *got) for aid, other in self.fieldrefs.get(name, ())
                         if (got := native_get(other)) is not None)
            matcher = self.matchers.get(name)
            if (read := native_read(name)) is not None and len(refs) == len(self.fieldrefs.get(name, ())):
                self.reads[name] = (*read, self._seen.get(name), matcher.missing if matcher else [], refs)
        # Fields read from ``EndpointEvent.fields`` only (no canonical attribute behind them).
        self.leftover = frozenset(name for name in names if name not in CANONICAL and name != KEYWORDS)
