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
   rows (bitset) of the values that satisfied it (the field pass,
   :class:`~scorer.rules.field_pass.FieldPass`, which the engine is built on);
3. evaluates each remaining rule's detection tree over atom bitsets, narrowed by its
   logsource rows (an ``and`` stops at an empty set).

No loop runs over rules x events: per event, only column reads and grouping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import scorer.native
from scorer.events.structs import EndpointEvent
from scorer.rules.bitsets import rows_of
from scorer.rules.compiled_trees import Deferred
from scorer.rules.field_pass import FieldPass, RuleRaised
from scorer.rules.model import RuleFailure, RuleHits


class RuleEngine(FieldPass):
    """A loaded rule pack: :meth:`load` it once, :meth:`evaluate` every batch (over the
    structures its :class:`~scorer.rules.index.PackIndex` built at load)."""

    @classmethod
    def load(cls, pack_dir: Path) -> RuleEngine:
        """The pack in ``pack_dir``, checksums verified (no pySigma: the IR is compiled), its
        long-value scanners built (:mod:`scorer.rules.scanners`)."""
        from scorer.rules.pack import read_pack
        from scorer.rules.scanners import prepare

        pack = read_pack(pack_dir)
        engine = cls(pack.rules, pack.atoms, pack.conditions)
        prepare(engine)
        return engine

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
            except RuleRaised as exc:
                hits.append(())
                errors[i] = RuleFailure(exc.rule_id, exc.message)
            except Exception as exc:
                hits.append(())
                errors[i] = RuleFailure("", f"{type(exc).__name__}: {exc}")
        return RuleHits(hits, errors)

    def _evaluate(self, events: Sequence[EndpointEvent]) -> RuleHits:
        try:
            return self._evaluate_batch(events)
        finally:  # the events' fields dicts are the batch's: freed with it, not at the next batch
            self._fields = None

    def _evaluate_batch(self, events: Sequence[EndpointEvent]) -> RuleHits:
        n = len(events)
        if n == 0:
            return RuleHits([], {})
        if len(self._bits) < n:
            self._bits = [1 << r for r in range(n)]
        full = (1 << n) - 1
        errors: dict[int, RuleFailure] = {}
        # Most fields are read over the rows of one logsource or a few: each set listed once.
        self._rows, self._arrays = {}, {}
        self._native = scorer.native.module("_edr")
        self._fold = scorer.native.module("_rules") if self._native is not None else None
        amask: dict[int, int] = self._fold.amask() if self._fold is not None else {}
        if self._fold is not None and type(events) is not list:
            events = list(events)
        self._present_made = False
        try:
            self._fields = scorer.native.column(events, "fields")  # (a slot read per event)
        except Exception:  # an unreadable event: every field is read, and fails naming its rule
            self._fields, self._present_made = None, True
        get = amask.get
        ls_masks = [0] * len(self.ls_code)
        live = self.heads.masks(events, self._bits, amask, ls_masks, self._fold)  # ascending: fields read in pack order
        if live is None:
            self._fields_of_rules(events, [(full, self.head_fields)], n, amask, errors)
            ls_code = self.ls_code
            triggered = sorted(self.ls_triggers.of(amask))
            for index in triggered:
                ls_masks[index] = ls_code[index](get, full)
            live = [index for index in triggered if ls_masks[index]]
        # Each field over the rows of the logsources naming it (the head fields are read).
        plan = [(ls_masks[index], self.ls_rest[index]) for index in live]
        self._fields_of_rules(events, plan, n, amask, errors)
        groups = list(filter(self.keyword_groups.__contains__, live))
        if groups:
            self._keywords(events, groups, ls_masks, n, amask)
        # Variants without trigger atoms count only where their logsource matched a row.
        if self._fold is not None:  # (Triggers.of's C loop, called here)
            candidates: set[int] = set()
            self._fold.triggered(self.variant_triggers.by_atom, amask, candidates)
        else:
            candidates = self.variant_triggers.of(amask, always=False)
        for index in live:
            candidates.update(self.untriggered.get(index, ()))
        rule_masks = self._fire(candidates, ls_masks, get, n)
        per_row: dict[int, list[int]] = {}
        for number in sorted(rule_masks):
            for r in rows_of(rule_masks[number], n):
                if r in per_row:
                    per_row[r].append(number)
                else:
                    per_row[r] = [number]
        hits: list[tuple[int, ...]] = [()] * n
        for r, numbers in per_row.items():
            if r not in errors:
                hits[r] = tuple(numbers)
        return RuleHits(hits, errors)

    def _fire(self, candidates: set[int], ls_masks: list[int], get: Callable[[int, int], int],
              n: int) -> dict[int, int]:
        """Each rule's rows (of the batch's ``n``): its candidate variants' trees over their
        logsources' rows, or-ed."""
        if self._fold is not None:  # the same loop in one C call
            fired: dict[int, int] = self._fold.fire(candidates, self.rule_of, self.ls_of, self._code, ls_masks, get,
                                                    self._flat, n)
            return fired
        rule_masks: dict[int, int] = {}
        rule_of, ls_of, compiled = self.rule_of, self.ls_of, self._code
        for vi in candidates:  # any order: a rule's rows are or-ed, its hits listed by number after
            scope = ls_masks[ls_of[vi]]
            if scope:
                tree = compiled[vi]
                if type(tree) is Deferred:  # (loaded with the C pass on; this process now runs without)
                    tree = compiled[vi] = tree.compiled()
                rows = tree(get, scope)
                if rows:
                    rule_masks[rule_of[vi]] = rule_masks.get(rule_of[vi], 0) | rows
        return rule_masks
