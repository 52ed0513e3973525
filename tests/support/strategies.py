"""Hostile inputs for the decoder and reader fuzz tests (hypothesis strategies), a hang
guard, and a counter of inputs tried (printed at the end of each fuzz module: :class:`Tries`).

Budget: SCORER_FUZZ_EXAMPLES (default 1000) examples per property (a quarter of that for
properties that write a whole capture file per example); CI keeps the default, a long run
raises it (see docs/reliability.md). No example database: each run draws new inputs, so CI
runs add up. (tests/fuzz took 283 s at 2000 and atheris' 60 s, 129 s at 1000 and 30 s, at load
7-13 on the 2-core box.)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from scorer.events.structs import EventKind
from tests.support.samples import SAMPLES

EXAMPLES = int(os.environ.get("SCORER_FUZZ_EXAMPLES", "1000"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
# Properties that write and read a whole file per example cost ~10x more: a quarter of it.
FILE_FUZZ = settings(FUZZ, max_examples=max(100, EXAMPLES // 4))
TRIED: Counter[str] = Counter()  # property name -> inputs tried

# Strings that have broken parsers before: markers adapters treat as missing, number-like
# text, NaN/inf spellings, bidi/zero-width/format characters, control characters, huge
# numbers, Windows paths, JSON/CSV/TSV syntax inside values, just-over-the-limit lengths.
NASTY = [
    "", " ", "-", "(empty)", "null", "None", "NaN", "nan", "-nan", "inf", "-Infinity", "1e999",
    "-1e999", "0x1f", "0b1", "1_000", "\uff19", "\u0661", "\u0661\u0662\u0663", "+", ".", "e5", "1e-400", "9" * 400,
    "\x00", "\x1b[31m", "\u202e", "\u200b", "\ufeff", "\ud7ff", "\U0010ffff", "a\nb", "a\tb", "a\r\nb",
    '{"a": 1}', "[1,2", '"', "\\", ",", "\t", "#fields", "C:\\Windows\\System32\\cmd.exe",
    "2017-07-07 12:59:01.1234567", "2024-02-30T25:61:61Z", "9999-12-31T23:59:59+14:00", "0001-01-01",
    "-62135596800", "1" * 20, "127.0.0.1", "::1", "0x7fffffff", "A" * 8192, "A" * 8193,
]
HUGE = st.sampled_from([10_000, 100_000, 300_000]).map(lambda n: "Z" * n)
TEXT = st.one_of(st.sampled_from(NASTY), st.text(max_size=40), HUGE)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**62, 2**63, -(2**63) - 1, 10**400, -(10**4000), 1e308, 5e-324, -0.0]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12,
)
BAD_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]


def dumps(value: Any) -> bytes:
    """JSON as a careless producer writes it: NaN/Infinity tokens allowed, non-ASCII raw."""
    return json.dumps(value, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def drifted(draw: st.DrawFn, kind: EventKind) -> dict[str, Any]:
    """A real event of ``kind`` after schema drift: fields dropped, retyped, renamed, nested,
    added; nested objects (Event-XML ``Event``/``System``/``EventData``) drift too."""
    sample = SAMPLES[kind]()
    doc: dict[str, Any] = json.loads(sample[draw(st.integers(0, len(sample) - 1))][2])
    targets = [doc] + [v for v in _objects(doc) if v is not doc]
    for _ in range(draw(st.integers(1, 6))):
        obj = draw(st.sampled_from(targets))
        keys = list(obj)
        op = draw(st.sampled_from(["drop", "retype", "rename", "nest", "add"]))
        if op == "add" or not keys:
            obj[draw(TEXT)] = draw(JSON_VALUES)
            continue
        key = draw(st.sampled_from(keys))
        if op == "drop":
            del obj[key]
        elif op == "retype":
            obj[key] = draw(JSON_VALUES)
        elif op == "rename":
            obj[draw(TEXT)] = obj.pop(key)
        else:
            obj[key] = draw(st.sampled_from([[obj[key]], {"#text": obj[key]}, {"value": obj[key]}]))
    return doc


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _objects(v)
    elif isinstance(value, list):
        for v in value:
            yield from _objects(v)


@st.composite
def mutated_bytes(draw: st.DrawFn, base: bytes) -> bytes:
    """Byte-level damage: flips, inserted invalid UTF-8 or syntax, truncation, duplication."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            data.extend(draw(st.binary(max_size=8)))
            continue
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.integers(0, 4))
        if op == 0:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            data[pos:pos] = draw(st.sampled_from([*BAD_UTF8, b"{", b"}", b"[", b'"', b"\\", b"\x00", b",", b"\n"]))
        elif op == 2:
            del data[pos:]
        elif op == 3:
            data[pos:pos] = data[: draw(st.integers(0, 64))]
        else:
            data[pos:pos] = draw(st.binary(max_size=16))
    return bytes(data)


@st.composite
def hostile_record(draw: st.DrawFn) -> tuple[EventKind | None, bytes | None]:
    """One input record as a careless or hostile producer sends it: a real event, damaged,
    drifted, arbitrary JSON, or random bytes of no kind."""
    kind = draw(st.none() | st.sampled_from(list(EventKind)))
    if kind is None:
        return None, draw(st.binary(max_size=64))
    sample = SAMPLES[kind]()
    real = sample[draw(st.integers(0, len(sample) - 1))][2]
    value = draw(st.one_of(st.just(real), mutated_bytes(real), drifted(kind).map(dumps), JSON_VALUES.map(dumps)))
    return kind, value


@contextlib.contextmanager
def no_hang(seconds: float = 10.0) -> Iterator[None]:
    """Fail (instead of blocking the suite) when one input takes longer than ``seconds``."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"one input took over {seconds}s: a hang")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def report(prefix: str) -> str:
    """How many inputs the properties named ``prefix...`` tried (printed by each module)."""
    mine = {name: n for name, n in TRIED.items() if name.startswith(prefix)}
    lines = [f"{prefix}: {sum(mine.values())} inputs tried"] + [f"  {k}: {n}" for k, n in sorted(mine.items())]
    return "\n".join(lines)


@dataclass(frozen=True)
class Tries:
    """The inputs one fuzz module tries, counted in TRIED as ``prefix/<property>``.

        TRIES = Tries("readers")
        _print_counts = TRIES.printed()      # the module's counts, printed when it ends
        with TRIES.one("gzip truncated"):   # one input, counted and guarded against a hang
            ...
    """

    prefix: str

    def one(self, name: str, seconds: float = 10.0) -> contextlib.AbstractContextManager[None]:
        TRIED[f"{self.prefix}/{name}"] += 1
        return no_hang(seconds)

    def printed(self) -> Callable[[], Iterator[None]]:
        """A module-scoped autouse fixture that prints :func:`report` of this prefix."""

        def print_counts() -> Iterator[None]:
            yield
            print("\n" + report(self.prefix))

        return pytest.fixture(scope="module", autouse=True, name=f"_print_{self.prefix}_counts")(print_counts)
