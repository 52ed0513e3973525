"""The service's CLI needs only the core install: extras (bench, train) are imported by the
commands that use them, not when `scorer` starts (a container image without the bench extra
must still run `scorer run`)."""

from __future__ import annotations

import subprocess
import sys

EXTRAS_ONLY = ("psutil", "faust", "quixstreams", "sklearn", "treelite")


def test_scorer_cli_starts_without_the_extras_modules() -> None:
    # A None entry in sys.modules makes `import name` raise ImportError, as if not installed.
    code = (
        "import sys\n"
        f"for name in {EXTRAS_ONLY!r}: sys.modules[name] = None\n"
        "from scorer.cli import main\n"
        "raise SystemExit(main(['--help']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "run" in done.stdout


COMMAND_MODULES = ("scorer.bench.cli", "scorer.bench.harness", "scorer.capacity.cli", "scorer.lifecycle.cli",
                   "scorer.rules.cli")


def _imported_by_parser(argv: list[str] | None) -> set[str]:
    """Which of COMMAND_MODULES a fresh interpreter holds after building the parser for ``argv``."""
    code = (
        "import sys\n"
        "from scorer import cli\n"
        f"cli._parser({argv!r})\n"
        f"print(' '.join(m for m in {COMMAND_MODULES!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.split())


def test_a_command_imports_only_its_own_module() -> None:
    """`scorer run` (started as a subprocess by operators' scripts and the tests) and each
    lifecycle command parse without the other commands' modules; --help builds the whole tree."""
    assert _imported_by_parser(["run", "--config", "x"]) == set()
    assert _imported_by_parser(["capacity", "--events-per-second", "1000"]) == {"scorer.capacity.cli"}
    assert "scorer.bench.cli" not in _imported_by_parser(["models", "list"])
    assert _imported_by_parser(None) >= {"scorer.bench.cli", "scorer.capacity.cli", "scorer.lifecycle.cli",
                                         "scorer.rules.cli"}
