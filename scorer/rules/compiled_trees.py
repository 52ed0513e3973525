"""Condition trees compiled to Python functions of ``(amask.get, scope)``.

A pack's logsource trees, and its detection trees wherever ``scorer.native._rules.fire`` does
not walk their flat form (:func:`~scorer.rules.bitsets.flat_tree`), run as these functions
once per batch. Generating that source, compiling it and keeping the functions for the
process is a concern of its own, apart from the bitsets and the interpreter
(:func:`~scorer.rules.bitsets.evaluate_tree`) whose rows every compiled tree must give.

>>> amask = {0: 0b0110, 1: 0b0011}
>>> bin(compile_tree(["and", 0, ["not", 1]])(amask.get, 0b1111))
'0b100'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import scorer.native
from scorer.rules.bitsets import _WIDE, atom_ids, evaluate_tree, or_of
from scorer.rules.model import Tree

# A compiled tree: called with ``amask.get`` and a scope, returns the rows of the scope where
# the tree holds.
Compiled = Callable[[Callable[[int, int], int], int], int]
# Deeper trees than this are interpreted: Python's nesting limits are far above.
_MAX_DEPTH = 40
# Atoms per line of a compiled ``or`` of atoms.
_CHUNK = 64
# Compiled functions kept by source, process-wide (a pack has a few thousand trees).
_COMPILED: dict[str, Compiled] = {}
_COMPILED_MAX = 50_000


def compile_tree(tree: Tree) -> Compiled:
    """``tree`` as a Python function of ``(amask.get, scope)``: the same rows as
    :func:`~scorer.rules.bitsets.evaluate_tree`, and its early exits (``and`` stops at an
    empty set, its arguments with the fewest atoms first; ``or`` at the whole scope), without
    its recursive calls and type tests per node; an ``or`` of plain atoms is one expression.
    It ran once per logsource and candidate rule per batch (measured: docs/benchmarks.md)."""
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
    (:func:`~scorer.rules.bitsets.flat_tree`), a pack's compiled variants are never called, and
    compiling its ~4,400 trees was ~1 s of every process's start (docs/benchmarks.md, section 57).

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
