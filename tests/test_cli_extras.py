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
