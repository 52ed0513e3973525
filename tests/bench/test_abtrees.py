"""stages_ab's guards (scorer/bench/abtrees.py): each tree's native part built from its own
sources, equal failures refused, cachegrind's unsymbolised instructions read."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest

from scorer.bench.abtrees import build_native, dead_letter_guard, unsymbolised

ROOT = Path(__file__).resolve().parents[2]


def _run(events: int, **reasons: int) -> dict[str, object]:
    return {"events": events, "dead_letter_reasons": reasons}


def test_healthy_sides_pass() -> None:
    assert dead_letter_guard({"before": [_run(1000, malformed_json=5)], "after": [_run(1000, malformed_json=5)]},
                             0.01) == []


def test_both_sides_failing_alike_are_refused() -> None:
    # The stale-extension case: every flow dead-lettered on both sides, digests equal.
    runs = {"before": [_run(600, feature_error=300), _run(600, feature_error=300)],
            "after": [_run(1200, feature_error=600)]}
    problems = dead_letter_guard(runs, 0.01)
    assert len(problems) == 2 and all("50.00%" in p for p in problems)


def test_sides_far_apart_are_refused() -> None:
    problems = dead_letter_guard({"before": [_run(1000)], "after": [_run(1000, decode_error=8)]}, 0.005)
    assert problems == ["after dead-lettered 0.80% of its events (> 0.50%)",
                        "the sides' dead-letter shares differ by more than 0.50%"]


def test_unsymbolised_counts_only_code_without_file_and_function(tmp_path: Path) -> None:
    out = tmp_path / "cachegrind.out"
    out.write_text("events: Ir\nfl=???\nfn=???\n0 100\n0 20\nfn=known\n0 7\n"
                   "fl=/usr/lib/libfoo.so\nfn=???\n0 5\nfl=???\nfn=???\n0 3\nsummary: 135\n")
    assert unsymbolised(out) == 123


def test_a_tree_without_native_sources_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "scorer" / "native").mkdir(parents=True)
    build_native(tmp_path)
    assert list((tmp_path / "scorer" / "native").iterdir()) == []


def test_native_sources_without_setup_py_stop_the_run(tmp_path: Path) -> None:
    native = tmp_path / "scorer" / "native"
    native.mkdir(parents=True)
    shutil.copy(ROOT / "scorer" / "native" / "_edr.c", native)
    with pytest.raises(SystemExit, match=r"no setup\.py"):
        build_native(tmp_path)


def test_each_tree_gets_modules_built_from_its_own_sources(tmp_path: Path) -> None:
    native = tmp_path / "scorer" / "native"
    native.mkdir(parents=True)
    shutil.copy(ROOT / "setup.py", tmp_path)
    for source in (ROOT / "scorer" / "native").glob("*.[ch]"):  # the sources and the header they share
        shutil.copy(source, native)
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    (native / f"_native{suffix}").write_bytes(b"a stale build")
    build_native(tmp_path)
    built = sorted(p.name for p in native.glob(f"*{suffix}"))
    assert built == sorted(f"{source.stem}{suffix}" for source in native.glob("*.c")) and len(built) >= 2
    assert (native / f"_native{suffix}").read_bytes()[:4] == b"\x7fELF"
    (native / "_edr.c").write_text("this is not C\n")
    with pytest.raises(SystemExit, match="building scorer/native failed"):
        build_native(tmp_path)
