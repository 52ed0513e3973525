"""A flow's statistics rewritten by scorer.native._findings are msgspec's bytes for the
dict[str, float] decoding gives, for the numbers copied as they are (already in msgspec's
layout) and those rebuilt from their digits, in runs and alone, whitespace or not."""

from __future__ import annotations

import itertools
import random

import msgspec
import pytest

from scorer.native import findings
from tests.support.native import use_native

needs_c = pytest.mark.skipif(not findings.built(), reason="scorer.native._findings is not built")


@pytest.fixture(autouse=True)
def _c_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C rewrite under test, whatever SCORER_NATIVE says (off, the wrapper returns None)."""
    use_native(monkeypatch, "1")

INTS = ["0", "1", "7", "10", "100", "83", "123456789012345", "1000000000000000", "1234567890123456",
        "9999999999999999", "12345678901234567", "10000000000000000", "100000000000000000000"]
FRACS = [None, "0", "00", "5", "50", "05", "0001", "00001", "000012", "0000", "00000", "000010", "000001", "0000012",
         "1", "10", "123456789012345", "12345678901234", "1234567890123456", "25", "3"]
EXPS = ["", "e5", "E-2", "e+0"]
TOKENS = [sign + i + ("." + f if f is not None else "") + e
          for sign, i, f, e in itertools.product(["", "-"], INTS, FRACS, EXPS)]
NAMES = tuple(f"k{i:03d}".encode() for i in range(128))
DECODE = msgspec.json.Decoder(dict[str, float]).decode
_FLOAT = msgspec.json.Decoder(float).decode
# Those msgspec writes back as they are: copied whole by the C code, in runs.
CANONICAL = [t for t in TOKENS if msgspec.json.encode(_FLOAT(t)) == t.encode()]


def _object(tokens: list[str], rng: random.Random) -> bytes:
    keys = sorted(rng.sample(range(len(NAMES)), len(tokens)))
    spaced = rng.random() < 0.3
    parts = []
    for k, t in zip(keys, tokens, strict=True):
        sep = rng.choice(["", " "]) if spaced else ""
        parts.append(f'"k{k:03d}"{sep}:{sep}{t}')
    return ("{" + (", " if spaced and rng.random() < 0.5 else ",").join(parts) + "}").encode()


@needs_c
def test_every_token_shape_alone_is_msgspec_s() -> None:
    rewritten = 0
    for t in TOKENS:
        raw = b'{"k000":%s}' % t.encode()
        got = findings.flow_extra(raw, NAMES)
        if got is not None:
            rewritten += 1
            assert got == msgspec.json.encode(DECODE(raw)), raw
    assert rewritten > len(TOKENS) * 0.9  # the rest: values out of range, decoded whole


@needs_c
def test_runs_of_tokens_are_msgspec_s() -> None:
    rng = random.Random(28)
    rewritten = 0
    for _ in range(3000):
        tokens = [rng.choice(CANONICAL if rng.random() < 0.85 else TOKENS) for _ in range(rng.randint(1, 40))]
        raw = _object(tokens, rng)
        got = findings.flow_extra(raw, NAMES)
        if got is not None:
            rewritten += 1
            assert got == msgspec.json.encode(DECODE(raw)), raw
    assert rewritten > 2000 and len(CANONICAL) > 100
