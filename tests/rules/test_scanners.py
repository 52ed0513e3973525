"""Long-value scanners are built when a pack is loaded, from a cache by content, and never by a
batch; a field's hits are the same before its scanner exists and after."""

from __future__ import annotations

import struct
from pathlib import Path

import hyperscan
import pytest

from scorer.bench.realistic import background
from scorer.bench.rules import otrf_events
from scorer.events import edr
from scorer.events.structs import EndpointEvent, EventKind
from scorer.rules import RuleEngine, scanners
from scorer.rules.annotate import RuleStage
from scorer.rules.field_pass import CACHE_VALUE_CHARS
from scorer.rules.fields import getter
from scorer.rules.matchers import LONG_VALUE, FieldMatcher
from scorer.rules.pack import read_golden
from tests.rules.helpers import SHIPPED, engine_of, rule, sysmon
from tests.support.paths import DATA_DIR

PATTERNS = [rb"\x61\x62\x63", rb"x[0-9]+y", rb"\x64\x65\x66"]
FLAGS = [hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_CASELESS] * 3


def _scan(db: hyperscan.Database, text: bytes) -> list[int]:
    found: list[int] = []
    db.scan(text, match_event_handler=lambda i, *_: found.append(i), scratch=hyperscan.Scratch(db))
    return sorted(found)


def _observe(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    """Each ``FieldMatcher.match`` call from now on: the matcher's id, whether its scanner ran."""
    calls: list[tuple[int, bool]] = []
    original = FieldMatcher.match

    def observed(self: FieldMatcher, value: str) -> list[int]:
        calls.append((id(self), (self.long is not None and len(value) > LONG_VALUE) or self.regex_scanner is not None))
        return original(self, value)

    monkeypatch.setattr(FieldMatcher, "match", observed)
    return calls


def _counts() -> tuple[int, int]:
    return scanners.COUNTS["compiled"], scanners.COUNTS["loaded"]


def test_a_database_is_compiled_once_then_loaded(tmp_path: Path) -> None:
    before = _counts()
    first = scanners.database(PATTERNS, FLAGS, tmp_path)
    assert _counts() == (before[0] + 1, before[1])
    assert [p.suffix for p in tmp_path.iterdir()] == [".hsdb"]
    second = scanners.database(PATTERNS, FLAGS, tmp_path)
    assert _counts() == (before[0] + 1, before[1] + 1)
    text = b"..ABC..x12y..zzz"
    assert _scan(first, text) == _scan(second, text) == [0, 1]
    scanners.database(PATTERNS[:2], FLAGS[:2], tmp_path)  # other patterns: another entry
    assert _counts()[0] == before[0] + 2 and len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("damage", ["version", "platform", "bytecode", "truncated"])
def test_a_file_this_host_cannot_use_is_compiled_over(tmp_path: Path, damage: str) -> None:
    # hs_database header: magic, version, length (u32 each), platform (u64), crc32 of the bytecode.
    scanners.database(PATTERNS, FLAGS, tmp_path)
    (path,) = tmp_path.iterdir()
    data = bytearray(path.read_bytes())
    if damage == "version":  # another hyperscan's database
        data[4:8] = struct.pack("<I", struct.unpack("<I", data[4:8])[0] ^ 0x0100)
    elif damage == "platform":  # another CPU's
        data[12:20] = struct.pack("<Q", struct.unpack("<Q", data[12:20])[0] ^ 0xFF)
    elif damage == "bytecode":
        data[-100] ^= 1
    else:
        del data[len(data) // 2:]
    path.write_bytes(bytes(data))
    compiled = _counts()[0]
    db = scanners.database(PATTERNS, FLAGS, tmp_path)
    assert _counts()[0] == compiled + 1
    assert _scan(db, b"abc x1y def") == [0, 1, 2]
    assert path.read_bytes() != bytes(data)  # written over with this host's
    scanners.database(PATTERNS, FLAGS, tmp_path)
    assert _counts()[0] == compiled + 1


def test_an_unwritable_cache_still_gives_a_database(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    db = scanners.database(PATTERNS, FLAGS, blocked / "cache")
    assert _scan(db, b"DEF") == [2]


LITERALS = "\n".join(f"    - 'needle{i:02d}'" for i in range(20))
RULES = (rule(f"sel:\n  ScriptBlockText|contains:\n{LITERALS}\ncondition: sel",
              logsource="logsource: {product: windows, category: ps_script}"),
         rule("sel:\n  ScriptBlockText|re: 'Invoke-[A-Z][a-z]+Ex'\ncondition: sel",
              logsource="logsource: {product: windows, category: ps_script}",
              rule_id="00000000-0000-0000-0000-000000000002"))


def _long_events() -> list[EndpointEvent]:
    # Longer than the engine remembers results for: every evaluation matches them again.
    filler = "z" * (CACHE_VALUE_CHARS + 1)
    texts = [filler + "NEEDLE07", "needle19" + filler, filler + "Invoke-WebEx" + filler,
             filler + "\u212aNEEDLE03", filler, "needle1" + filler + "9"]
    return [sysmon(4104, Channel="Microsoft-Windows-PowerShell/Operational", ScriptBlockText=t) for t in texts]


def test_a_fields_hits_are_the_same_before_and_after_its_scanner(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    engine = engine_of(tmp_path, *RULES)
    matcher = engine.matchers["ScriptBlockText"]
    calls = _observe(monkeypatch)
    events = _long_events()
    before = engine.evaluate(events).hits
    assert {scanner for _, scanner in calls} == {False} and matcher.long is None
    assert scanners.prepare(engine) >= 1 and matcher.long is not None
    calls.clear()
    after = engine.evaluate(events).hits
    assert {scanner for _, scanner in calls} == {True}
    assert after == before == [(0,), (0,), (1,), (0,), (), ()]


@pytest.fixture(scope="module")
def shipped() -> RuleEngine:
    return RuleEngine.load(SHIPPED)


@pytest.mark.parametrize("how", ["RuleEngine.load", "RuleStage.load"])
def test_no_batch_compiles_a_scanner_once_the_pack_is_loaded(how: str, shipped: RuleEngine,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "RuleEngine.load":
        engine = shipped
    else:
        engine = RuleStage.load(SHIPPED.parent.parent, SHIPPED.parent.name, SHIPPED.name).engine
    fields = [name for name, m in engine.matchers.items() if m.substr is not None and m.long_ok]
    assert len(fields) > 40
    assert all(engine.matchers[name].long is not None for name in fields)
    assert all(m.long is not None for m in engine.keyword_groups.values() if m.substr is not None and m.long_ok)
    regexes_only = [m for m in engine.matchers.values() if m.regex is not None and m.long is None]
    assert regexes_only and all(m.regex_scanner is not None for m in regexes_only)  # CommandLine's among them
    # Every such field with a long value, in every logsource the pack's rules read it in.
    events = [sysmon(event_id, **{name: "z" * LONG_VALUE + name for name in fields}) for event_id in range(1, 30)]
    calls = _observe(monkeypatch)
    loaded = _counts()
    result = engine.evaluate(events)
    assert not result.errors
    assert _counts() == loaded  # nothing compiled, nothing even loaded: all built at load
    assert len({matcher for matcher, scanner in calls if scanner}) > 20  # the scanners did the matching


@pytest.mark.data
def test_the_shipped_packs_regex_scanners_agree_with_its_re2_sets(shipped: RuleEngine) -> None:
    # Fields without a long-value scanner (CommandLine: too many literals) scan their regexes
    # with Hyperscan at every length: on real values, upper-cased and made long, RE2's hits.
    events = otrf_events(DATA_DIR / "edr" / "otrf-security-datasets", limit=1500, stride=40)
    if not events:
        pytest.skip("no OTRF captures")
    events += [edr.from_mapping(entry["event"]) for entry in read_golden(SHIPPED)]
    events += [ev for ev in background(DATA_DIR, EventKind.EDR, 5000) if isinstance(ev, EndpointEvent)]
    scanned = {name: m for name, m in shipped.matchers.items() if m.regex_scanner is not None}
    assert "CommandLine" in scanned
    compared = hits = 0
    for name, matcher in scanned.items():
        values = {v for ev in events if (v := getter(name)(ev)) is not None}
        for value in values | {v.upper() for v in values} | {v + " " + "z" * LONG_VALUE + v for v in values}:
            assert matcher.regex is not None and matcher.regex_scanner is not None
            want = sorted(matcher.regex_ids[i] for i in matcher.regex.Match(value.encode("utf-8", "replace")) or ())
            got: list[int] = []
            matcher.regex_scanner.match(value, got)
            assert sorted(got) == want, (name, value[:200])
            compared, hits = compared + 1, hits + bool(want)
    assert compared > 500 and hits > 200, (compared, hits)
