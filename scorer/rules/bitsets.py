"""Sets of batch rows as Python ints (bit ``r`` = row ``r``), and condition trees over them.

A batch of 4096 rows is a 4096-bit int: ``&``, ``|`` and ``& ~`` over the whole batch are one
C-level operation on 64 machine words each, cheaper than a numpy call on a bool array of the
same rows (measured: docs/rules.md).

>>> amask = {0: 0b0110, 1: 0b0011}
>>> bin(evaluate_tree(["and", 0, ["not", 1]], amask, 0b1111))
'0b100'
>>> bin(evaluate_tree(["or", 0, 1], amask, 0b1101))
'0b101'
>>> list(rows_of(0b1010, 4)), sorted(need(["and", 0, ["or", 1, 2]]) or ())
([1, 3], [0])

Trees compiled to Python functions, the same rows without the interpreter's recursion, are
:mod:`scorer.rules.compiled_trees`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from operator import itemgetter
from types import ModuleType
from typing import Any

import numpy as np

from scorer.rules.model import Tree

# Up to this many set bits, rows_of walks the bits in Python rather than unpacking them in numpy.
_FEW_ROWS = 32


def rows_of(mask: int, n: int) -> Sequence[int]:
    """Row numbers of the set bits of ``mask``."""
    if mask == (1 << n) - 1:
        return range(n)
    if mask & (mask - 1) == 0:
        return [mask.bit_length() - 1] if mask else []
    rows: list[int] = []
    if mask.bit_count() <= _FEW_ROWS:  # a bit at a time: ~0.07 us each, numpy's four calls ~3.5 us
        while mask:
            low = mask & -mask
            rows.append(low.bit_length() - 1)
            mask ^= low
        return rows
    packed = np.frombuffer(mask.to_bytes((n + 7) // 8, "little"), dtype=np.uint8)
    rows = np.flatnonzero(np.unpackbits(packed, bitorder="little")).tolist()
    return rows


def evaluate_tree(tree: Tree, amask: dict[int, int], scope: int) -> int:
    """Rows of ``scope`` where ``tree`` holds."""
    if isinstance(tree, bool):
        return scope if tree else 0
    if isinstance(tree, int):
        return amask.get(tree, 0) & scope
    op = tree[0]
    if op == "and":
        for arg in tree[1:]:
            scope = evaluate_tree(arg, amask, scope)
            if not scope:
                break
        return scope
    if op == "or":
        out = 0
        for arg in tree[1:]:
            out |= evaluate_tree(arg, amask, scope & ~out)
            if out == scope:
                break
        return out
    if op == "not":
        return scope & ~evaluate_tree(tree[1], amask, scope)
    raise ValueError(f"unknown condition operator {op!r}")


# An ``or`` of more atoms than this looks up only those of its atoms that have rows (``amask``'s
# keys, a few dozen a batch, against a frozenset of its atoms: one C call, ``_rules.or_of``, or
# :func:`or_of`), not each of its atoms (a rule may list hundreds of values).
_WIDE = 16

# A tree as scorer.native._rules.fire evaluates it in C: an operator node a tuple (0 and, 1 or,
# 2 not, then its arguments; an ``and``'s in compile_tree's order), a wide ``or`` of atoms the
# frozenset of them, atoms and booleans as they are.
FlatTree = int | bool | frozenset[int] | tuple[Any, ...]
_OPS = {"and": 0, "or": 1, "not": 2}


def flat_tree(tree: Tree) -> FlatTree:
    """``tree`` for ``_rules.fire``: the same rows as :func:`evaluate_tree` and
    :func:`~scorer.rules.compiled_trees.compile_tree` (an ``and``'s arguments in compile_tree's
    order: fewest atoms first)."""
    return _flat(tree)[0]


def _flat(tree: Tree) -> tuple[FlatTree, int]:
    """:func:`flat_tree`, and how many atoms the tree names (``len(atom_ids(tree))``), counted on
    the way up: sorting each ``and`` by its arguments' atom lists walked every subtree once per
    level above it (~50 ms of a pack's load)."""
    if isinstance(tree, bool):
        return tree, 0
    if isinstance(tree, int):
        return tree, 1
    op, args = tree[0], tree[1:]
    if op not in _OPS:
        raise ValueError(f"unknown condition operator {op!r}")
    if op == "or" and len(args) > _WIDE and all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        return frozenset(int(a) for a in args), len(args)
    parts = [_flat(arg) for arg in args]
    if op == "and":
        parts.sort(key=_COUNT)  # stable, as sorted() by atom count was
    return (_OPS[op], *(flat for flat, _ in parts)), sum(count for _, count in parts)


_COUNT = itemgetter(1)


def or_of(amask: dict[int, int], atoms: frozenset[int]) -> int:
    """The or of ``amask``'s rows over those of ``atoms`` it holds (``_rules.or_of`` in Python)."""
    out = 0
    for a in amask.keys() & atoms:
        out |= amask[a]
    return out


def need(tree: Any, shared: Mapping[int, int] | None = None) -> set[int] | None:
    """Atoms one of which must match for ``tree`` to hold anywhere (None: no such set).

    Of an ``and``'s sets the smallest, and of those (``shared``: atom -> how many trees name
    it) the one whose atoms the fewest trees share: an atom every logsource names (the
    Sysmon channel) matches in every batch, its EventID beside it seldom.

    >>> sorted(need(["and", 0, 78])), sorted(need(["and", 0, 78], {0: 150, 78: 2}))
    ([0], [78])
    """
    if isinstance(tree, bool):
        return None if tree else set()
    if isinstance(tree, int):
        return {tree}
    if tree[0] == "or":
        out: set[int] = set()
        for arg in tree[1:]:
            sub = need(arg, shared)
            if sub is None:
                return None
            out |= sub
        return out
    if tree[0] == "and":
        needs = [x for x in (need(arg, shared) for arg in tree[1:]) if x is not None]
        if not needs:
            return None
        if shared is None:
            return min(needs, key=len)
        return min(needs, key=lambda x: (len(x), sum(shared.get(a, 0) for a in x)))
    return None  # not: holds where its argument matched nothing


def atom_ids(tree: Any) -> list[int]:
    """The atoms of ``tree``, left to right, repeats kept (a loop, not a recursion: a pack's
    load asks for ~30,000 trees' atoms)."""
    if isinstance(tree, bool):
        return []
    if isinstance(tree, int):
        return [tree]
    out: list[int] = []
    todo = tree[:0:-1]  # (the arguments, last first: popped in order)
    while todo:
        node = todo.pop()
        if isinstance(node, bool):
            continue
        if isinstance(node, int):
            out.append(node)
        else:
            todo += node[:0:-1]
    return out

class Triggers:
    """Trees (variants or logsources, by number) indexed by their trigger atoms (bitsets.need)."""

    def __init__(self, trees: Iterable[Tree], atoms: Sequence[Collection[int]] | None = None) -> None:
        """``atoms``: each tree's atoms (:func:`atom_ids`, repeats or not), where the caller has them."""
        self.always: list[int] = []
        self.by_atom: dict[int, list[int]] = {}
        trees = list(trees)
        shared = Counter(a for ids in (atoms if atoms is not None else map(atom_ids, trees)) for a in set(ids))
        for number, tree in enumerate(trees):
            required = need(tree, shared)
            if required is None:
                self.always.append(number)
            for aid in required or ():
                self.by_atom.setdefault(aid, []).append(number)
        self.atoms = frozenset(self.by_atom)

    def of(self, amask: dict[int, int], always: bool = True, native: ModuleType | None = None) -> set[int]:
        """The trees to evaluate: those a matched atom triggers, and (``always``) those without
        triggers. ``native``: :mod:`scorer.native._rules`, whose ``triggered`` is this loop."""
        out = set(self.always if always else ())
        if native is not None:
            native.triggered(self.by_atom, amask, out)
            return out
        by_atom = self.by_atom
        for aid in self.atoms.intersection(amask):
            if amask[aid]:
                out.update(by_atom[aid])
        return out
