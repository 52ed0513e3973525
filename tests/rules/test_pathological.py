"""A catastrophic-backtracking regex cannot stall a batch: RE2 matches in linear time."""

from __future__ import annotations

import re
from pathlib import Path

from scorer.rules.matchers import REGEX_MAX_CHARS
from tests.rules.helpers import engine_of, fired, rule, sysmon, try_engine


def test_nested_quantifier_on_a_long_value_completes(tmp_path: Path) -> None:
    # (a+)+$ backtracks exponentially in Python's re on "aaaa...!" (never tried here).
    engine = engine_of(tmp_path, rule("sel:\n  CommandLine|re: '(a+)+$'\ncondition: sel"))
    evil = "a" * 8000 + "!"
    assert fired(engine, sysmon(CommandLine=evil), sysmon(CommandLine="a" * 8000),
                 sysmon(CommandLine="b")) == [False, True, False]


def test_many_pathological_values_in_one_batch(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, rule("sel:\n  CommandLine|re: '^(x+x+)+y'\ncondition: sel"))
    events = [sysmon(CommandLine="x" * (4000 + i)) for i in range(200)] + [sysmon(CommandLine="xxy")]
    assert fired(engine, *events) == [False] * 200 + [True]


def test_regex_sees_a_bounded_prefix(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, rule("sel:\n  Payload|re: 'needle$'\ncondition: sel"))
    assert REGEX_MAX_CHARS >= 8192  # every value the decoder keeps is seen whole
    assert fired(engine, sysmon(Payload="z" * 8000 + "needle")) == [True]


def test_regex_re2_cannot_run_is_refused_with_reason(tmp_path: Path) -> None:
    # Back-references and look-arounds need backtracking: refused at compile time, not run.
    _, errors = try_engine(tmp_path, rule("sel:\n  CommandLine|re: '(a)\\1'\ncondition: sel"),
                           rule("sel:\n  CommandLine|re: 'foo(?!bar)'\ncondition: sel",
                                rule_id="00000000-0000-0000-0000-000000000002"))
    assert len(errors) == 2
    assert all("not RE2 syntax" in e.reason for e in errors), errors
    assert re.search(r"r00[01]\.yml", errors[0].file)
