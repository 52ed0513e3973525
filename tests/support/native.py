"""Switching scorer.native's path in a test: ``SCORER_NATIVE`` is read once per process, so a
test sets the variable and the choice made from it together, and both are undone with the
test's (or the ``MonkeyPatch.context()``'s) other patches."""

from __future__ import annotations

import pytest

import scorer.native


def use_native(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """``SCORER_NATIVE=value`` from now until ``monkeypatch`` is undone (``"0"``: the Python
    reference; ``"1"``: native, and ImportError where a module asked for is not built)."""
    monkeypatch.setenv(scorer.native.ENV, value)
    monkeypatch.setattr(scorer.native, "_CHOSEN", scorer.native.choices(value))
