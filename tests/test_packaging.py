"""Installing the project prints no warning of its own (issue 20): the wheel builds with the
C extension and setuptools says nothing about the project's configuration."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_builds_without_warnings(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-v", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout + out.stderr
    # The build backend's own warnings (SetuptoolsDeprecationWarning, BuildBackendWarning, ...)
    # about this project's pyproject.toml or setup.py; pip's notices about itself are not ours.
    ours = [line for line in text.splitlines() if re.search(r"(Deprecation|Backend|Experimental)\w*Warning", line)]
    assert not ours, "\n".join(ours)
    (wheel,) = tmp_path.glob("scorer-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(re.fullmatch(r"scorer/native/_native\.cpython-[^/]+\.so", n) for n in names), names
    assert "scorer/native/_native.pyi" in names
