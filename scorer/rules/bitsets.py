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
>>> bin(compile_tree(["and", 0, ["not", 1]])(amask.get, 0b1111))
'0b100'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from operator import itemgetter
from types import ModuleType
from typing import Any

import numpy as np

import scorer.native
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


# A compiled tree: called with ``amask.get`` and a scope, returns the rows of the scope where
# the tree holds.
Compiled = Callable[[Callable[[int, int], int], int], int]
# Deeper trees than this are interpreted: Python's nesting limits are far above.
_MAX_DEPTH = 40
# Atoms per line of a compiled ``or`` of atoms.
_CHUNK = 64
# An ``or`` of more atoms than this looks up only those of its atoms that have rows (``amask``'s
# keys, a few dozen a batch, against a frozenset of its atoms: one C call, ``_rules.or_of``, or
# :func:`or_of`), not each of its atoms (a rule may list hundreds of values).
_WIDE = 16
# Compiled functions kept by source, process-wide (a pack has a few thousand trees).
_COMPILED: dict[str, Compiled] = {}
_COMPILED_MAX = 50_000


def compile_tree(tree: Tree) -> Compiled:
    """``tree`` as a Python function of ``(amask.get, scope)``: the same rows as
    :func:`evaluate_tree`, and its early exits (``and`` stops at an empty set, its arguments
    with the fewest atoms first; ``or`` at the whole scope), without its recursive calls and
    type tests per node; an ``or`` of plain atoms is
    one expression. It ran once per logsource and candidate rule per batch (measured:
    docs/benchmarks.md)."""
    if _depth(tree) > _MAX_DEPTH:
        return lambda get, scope: evaluate_tree(tree, _Lookup(get), scope)
    lines: list[str] = []
    emitter = _Emitter(lines)
    result = emitter.emit(tree, "s", 1)
    source = "".join(emitter.consts) + "def f(g, s):\n" + "\n".join(lines) + f"\n    return {result}\n"
    # Compiling is the cost (~100 us a tree, the parser's): a pack loaded again in the same
    # process (a rule shadow, a redeploy, tests) reuses its functions.
    code = _COMPILED.get(source)
    if code is not None:
        return code
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()
    code = _COMPILED[source] = _compile(tree, source)
    return code


def _compile(tree: Tree, source: str) -> Compiled:
    native = scorer.native.module("_rules")
    space: dict[str, Any] = {"_or_of": or_of if native is None else native.or_of}
    try:
        # The source holds only atom ids (ints), operators and local names built above.
        exec(compile(source, "<rule condition>", "exec"), space)
    except (RecursionError, MemoryError, SyntaxError):  # beyond the compiler's limits: interpreted
        return lambda get, scope: evaluate_tree(tree, _Lookup(get), scope)
    code: Compiled = space["f"]
    return code


class _Emitter:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.count = 0
        self.consts: list[str] = []  # module-level lines of the source (frozensets of atoms)

    def var(self) -> str:
        self.count += 1
        return f"v{self.count}"

    def emit(self, tree: Tree, scope: str, depth: int) -> str:
        """Lines computing ``tree`` within ``scope``; returns the expression of the result."""
        pad = "    " * depth
        if isinstance(tree, bool):
            return scope if tree else "0"
        if isinstance(tree, int):
            return f"(g({int(tree)}, 0) & {scope})"
        op, args = tree[0], tree[1:]
        out = self.var()
        if op == "not":
            inner = self.emit(args[0], scope, depth)
            self.lines.append(f"{pad}{out} = {scope} & ~{inner}")
            return out
        if op == "or" and all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            if len(args) > _WIDE:  # (g is ``amask.get``: the dict is its __self__)
                name = f"A{len(self.consts)}"
                self.consts.append(f"{name} = frozenset({sorted({int(a) for a in args})!r})\n")
                self.lines.append(f"{pad}{out} = _or_of(g.__self__, {name}) & {scope}")
                return out
            # In chunks: a long ``|`` chain is a deep expression tree, which the compiler
            # walks recursively (a rule may list thousands of values).
            chunks = [args[i:i + _CHUNK] for i in range(0, len(args), _CHUNK)] or [[]]
            for i, chunk in enumerate(chunks):
                atoms = " | ".join(f"g({int(a)}, 0)" for a in chunk) or "0"
                self.lines.append(f"{pad}{out} {'|=' if i else '='} {atoms}")
            self.lines.append(f"{pad}{out} &= {scope}")
            return out
        if op not in ("and", "or"):
            raise ValueError(f"unknown condition operator {op!r}")
        if op == "and":
            # The fewest atoms first: an and's rows do not depend on its order, and a rule's
            # selective part (a single atom, its trigger as often as not) empties the scope
            # before a list of dozens of values is looked up.
            args = sorted(args, key=lambda arg: len(atom_ids(arg)))
        # A one-pass loop: ``break`` is the early exit.
        self.lines.append(f"{pad}{out} = {scope if op == 'and' else '0'}")
        self.lines.append(f"{pad}while True:")
        inner_pad = pad + "    "
        for arg in args:
            if op == "and":
                value = self.emit(arg, out, depth + 1)
                self.lines.append(f"{inner_pad}{out} = {value}")
                self.lines.append(f"{inner_pad}if not {out}: break")
            else:
                sub = self.var()
                self.lines.append(f"{inner_pad}{sub} = {scope} & ~{out}")
                value = self.emit(arg, sub, depth + 1)
                self.lines.append(f"{inner_pad}{out} |= {value}")
                self.lines.append(f"{inner_pad}if {out} == {scope}: break")
        self.lines.append(f"{inner_pad}break")
        return out

class Deferred:
    """A tree compiled at its first call: where ``scorer.native._rules.fire`` walks the flat trees
    (:func:`flat_tree`), a pack's compiled variants are never called, and compiling its ~4,400
    trees was ~1 s of every process's start (docs/benchmarks.md, section 57).

    >>> tree = Deferred(["or", 0, 1]); tree.code is None, bin(tree({0: 0b01, 1: 0b10}.get, 0b11)), tree.code is None
    (True, '0b11', False)
    """

    __slots__ = ("code", "tree")

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.code: Compiled | None = None

    def compiled(self) -> Compiled:
        if self.code is None:
            self.code = compile_tree(self.tree)
        return self.code

    def __call__(self, get: Callable[[int, int], int], scope: int) -> int:
        return self.compiled()(get, scope)


# A tree as scorer.native._rules.fire evaluates it in C: an operator node a tuple (0 and, 1 or,
# 2 not, then its arguments; an ``and``'s in compile_tree's order), a wide ``or`` of atoms the
# frozenset of them, atoms and booleans as they are.
FlatTree = int | bool | frozenset[int] | tuple[Any, ...]
_OPS = {"and": 0, "or": 1, "not": 2}


def flat_tree(tree: Tree) -> FlatTree:
    """``tree`` for ``_rules.fire``: the same rows as :func:`evaluate_tree` and :func:`compile_tree`
    (an ``and``'s arguments in compile_tree's order: fewest atoms first)."""
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


class _Lookup(dict[int, int]):
    """``amask.get`` seen as the mapping :func:`evaluate_tree` reads."""

    def __init__(self, get: Callable[[int, int], int]) -> None:
        super().__init__()
        self._get = get

    def get(self, key: int, default: int = 0) -> int:  # type: ignore[override]
        return self._get(key, default)


def _depth(tree: Any) -> int:
    if isinstance(tree, bool | int):
        return 0
    return 1 + max((_depth(arg) for arg in tree[1:]), default=0)


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
