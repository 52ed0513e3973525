"""Compiled condition trees (scorer.rules.compiled_trees.compile_tree) against the interpreter."""

from __future__ import annotations

import random
from typing import Any

import pytest

from scorer.rules.bitsets import atom_ids, evaluate_tree
from scorer.rules.compiled_trees import compile_tree
from scorer.rules.engine import RuleEngine
from scorer.rules.model import Tree
from tests.rules.helpers import SHIPPED


def _tree(rng: random.Random, depth: int) -> Tree:
    roll = rng.random()
    if depth == 0 or roll < 0.3:
        return rng.choice([True, False]) if roll < 0.03 else rng.randrange(12)
    op = rng.choice(["and", "or", "not"])
    if op == "not":
        return ["not", _tree(rng, depth - 1)]
    args: list[Any] = [_tree(rng, depth - 1) for _ in range(rng.randrange(0, 5))]
    if rng.random() < 0.3:  # an "or" of plain atoms has a flat form of its own
        args = [rng.randrange(12) for _ in range(rng.randrange(1, 6))]
    return [op, *args]


@pytest.mark.parametrize("seed", range(20))
def test_compiled_tree_selects_the_rows_the_interpreter_does(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice([1, 7, 64, 300])
    for _ in range(50):
        tree = _tree(rng, 4)
        code = compile_tree(tree)
        for _ in range(5):
            # Atoms absent from the mask (no row matched) as well as empty and full ones.
            amask = {a: rng.choice([0, (1 << n) - 1, rng.getrandbits(n)]) for a in range(12) if rng.random() < 0.7}
            scope = rng.choice([(1 << n) - 1, rng.getrandbits(n), 0])
            assert code(amask.get, scope) == evaluate_tree(tree, amask, scope), (tree, amask, scope)


def test_a_tree_too_deep_to_compile_is_interpreted() -> None:
    tree: Tree = 0
    for i in range(100):
        tree = ["and" if i % 2 else "or", tree, i % 3 + 1]
    amask = {0: 0b1011, 1: 0b0110, 2: 0b1110, 3: 0b0111}
    assert compile_tree(tree)(amask.get, 0b1111) == evaluate_tree(tree, amask, 0b1111)


def test_unknown_operator_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown condition operator"):
        compile_tree(["xor", 0, 1])


def test_a_long_or_of_atoms_compiles() -> None:
    # A rule listing thousands of values: one long ``|`` chain would overflow the compiler.
    tree: Tree = ["and", 0, ["or", *range(1, 5001)]]
    amask = {0: 0b111, 4999: 0b101, 7: 0b010}
    assert compile_tree(tree)(amask.get, 0b1111) == 0b111 == evaluate_tree(tree, amask, 0b1111)


def test_every_detection_of_the_shipped_pack_compiles_to_the_same_rows() -> None:
    engine = RuleEngine.load(SHIPPED)
    rng = random.Random(7)
    for _, _, tree in engine.variants:
        code, atoms = compile_tree(tree), atom_ids(tree)
        for _ in range(2):
            amask = {a: rng.getrandbits(40) for a in atoms if rng.random() < 0.5}
            scope = rng.getrandbits(40)
            assert code(amask.get, scope) == evaluate_tree(tree, amask, scope), tree


@pytest.mark.parametrize("seed", range(6))
def test_a_wide_or_looks_up_the_atoms_with_rows_only(seed: int) -> None:
    """An ``or`` of more atoms than _WIDE (intersected with amask's keys): the interpreter's rows."""
    rng = random.Random(seed)
    for _ in range(40):
        wide: list[Any] = ["or", *rng.sample(range(80), rng.randrange(17, 60))]
        tree: Tree = rng.choice([wide, ["and", rng.randrange(80), wide], ["not", wide], ["or", wide, wide]])
        n = rng.choice([3, 64, 130])
        amask = {a: rng.choice([0, rng.getrandbits(n)]) for a in rng.sample(range(90), rng.randrange(0, 40))}
        scope = rng.choice([(1 << n) - 1, rng.getrandbits(n)])
        assert compile_tree(tree)(amask.get, scope) == evaluate_tree(tree, amask, scope)


def _atoms_by_recursion(tree: Any) -> list[int]:
    if isinstance(tree, bool):
        return []
    if isinstance(tree, int):
        return [tree]
    return [a for arg in tree[1:] for a in _atoms_by_recursion(arg)]


@pytest.mark.parametrize("seed", range(5))
def test_atom_ids_lists_a_trees_atoms_left_to_right(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        tree = _tree(rng, 6)
        assert atom_ids(tree) == _atoms_by_recursion(tree), tree
    assert atom_ids(["and", ["or", 3, ["not", 1]], True, 3]) == [3, 1, 3]
