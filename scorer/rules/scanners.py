"""Hyperscan databases of the long-value scanners (:mod:`scorer.rules.longtext`), built when a
pack is loaded and cached on disk by content.

Compiling a field's database takes 10-90 ms (the shipped pack: 56 of them, ~0.6-0.9 s of CPU);
loading a serialised one takes microseconds. So :func:`prepare` builds every scanner of an
engine when its pack is loaded (service start, or a pack check in a worker thread), never in
a batch, and :func:`database` keeps each compiled database under
``$XDG_CACHE_HOME/scorer/hyperscan`` (~/.cache), named by a hash of its patterns, flags and
hyperscan's version: a host compiles a pack's scanners once. A file written on another host
(another CPU, another hyperscan) is refused by hyperscan itself when deserialised (version,
platform and CRC are checked) and the database is compiled here instead and written over it.
A read-only cache only costs the compile.

A field whose scanner is not built (an engine made without :func:`prepare`: tests, offline
tools) matches its long values with the automaton and RE2 set of its short values, which
give the same hits (tests/rules/test_longtext.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

try:  # optional at run time: without it scorer.rules.longtext uses RE2 and never calls database
    import hyperscan
except (ImportError, OSError):  # pragma: no cover - where the wheel or its library is missing
    hyperscan = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from scorer.rules.engine import RuleEngine

log = logging.getLogger(__name__)
# Databases this process compiled and loaded from the cache: what tests observe.
COUNTS: Counter[str] = Counter()
_SUFFIX = ".hsdb"


def default_cache() -> Path:
    """Per user, outside the package: ``$XDG_CACHE_HOME/scorer/hyperscan`` (~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scorer" / "hyperscan"


def prepare(engine: RuleEngine) -> int:
    """Builds the long-value scanner of every field (and keyword group) of ``engine`` that has
    one; returns how many were built. Blocking CPU work: run it where the pack is loaded."""
    built = 0
    for matcher in (*engine.matchers.values(), *engine.keyword_groups.values()):
        built += matcher.prepare_long()
    return built


def database(expressions: list[bytes], flags: list[int], cache: Path | None = None) -> hyperscan.Database:
    """A block-mode database of ``expressions`` (ids = their indexes), from the cache when a
    usable one is there, else compiled and written to it."""
    version = getattr(hyperscan, "__version__", "")  # (hyperscan checks its own version on load too)
    key = hashlib.sha256(f"{version} block {len(expressions)}".encode())
    for expression, flag in zip(expressions, flags, strict=True):
        key.update(b"%d %d " % (flag, len(expression)) + expression)
    path = (cache or default_cache()) / (key.hexdigest()[:32] + _SUFFIX)
    try:
        db = hyperscan.loadb(path.read_bytes(), hyperscan.HS_MODE_BLOCK)
        hyperscan.Scratch(db)  # validates the database for this CPU before anyone scans with it
        COUNTS["loaded"] += 1
        return db
    except FileNotFoundError:
        pass
    except (OSError, hyperscan.error) as exc:  # another host's, or damaged: rebuilt below
        log.info("hyperscan cache %s not usable here (%s): compiling", path, exc)
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(expressions=expressions, ids=list(range(len(expressions))), elements=len(expressions), flags=flags)
    COUNTS["compiled"] += 1
    _write(path, hyperscan.dumpb(db))
    return db


def _write(path: Path, data: bytes) -> None:
    """``data`` to ``path`` by rename: a concurrent reader sees the old file or the whole new one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:  # e.g. a read-only home: every load compiles
        log.info("hyperscan cache %s not writable (%s)", path.parent, exc)
