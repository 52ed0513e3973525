"""The markers that say what a test needs, set at collection from the fixtures it uses.

``kafka`` / ``triton``: the test (directly, or through another fixture) uses a fixture that
starts a real broker / tritonserver; ``gpu``: the GPU serving stack (deploy/gpu) on a tritonserver. The
service launchers (:mod:`tests.support.kafka`, :mod:`tests.support.triton`) refuse to start
inside a test that lacks the marker, so ``-m "not kafka"`` can never start a broker.
``data`` (reads ``../shared/data``) and ``slow`` (minutes-long fault runs) are set by hand.
``integration`` stays as the name of "needs a real service": kafka or triton.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest

# fixture -> the markers of every test that uses it (tests/conftest.py applies them).
FIXTURE_MARKERS: dict[str, tuple[str, ...]] = {
    "start_kafka": ("kafka",),  # every broker of the tests is started through this one
    "start_cluster": ("kafka",),  # the three-broker cluster (tests/support/cluster.py)
    "start_triton": ("triton",),  # every tritonserver of tests/support/triton.py
    "gpu_server": ("gpu", "triton"),  # deploy/gpu's model repository on a tritonserver
    "nvforest_server": ("gpu", "triton"),  # the same with nvForest on a CUDA GPU
    "start_prometheus": ("prometheus",),  # Debian's prometheus (tests/support/prometheus.py)
}
SERVICE_MARKERS = ("kafka", "triton")  # either one makes a test ``integration``

_current: frozenset[str] | None = None  # markers of the running test; None outside pytest


def markers_for(fixtures: Iterable[str]) -> set[str]:
    """The markers a test using ``fixtures`` (its whole fixture closure) must carry."""
    wanted = {m for f in fixtures for m in FIXTURE_MARKERS.get(f, ())}
    if wanted & set(SERVICE_MARKERS):
        wanted.add("integration")
    return wanted


def set_current(markers: Iterable[str] | None) -> None:
    global _current
    _current = frozenset(markers) if markers is not None else None


def require(marker: str, what: str) -> None:
    """Refuse ``what`` (a service start, a data read) inside a test without ``marker``."""
    if _current is None or marker in _current:
        return
    how = (f"start it through the start_{marker} fixture (tests/conftest.py), which marks the test"
           if marker in SERVICE_MARKERS else f"mark the test @pytest.mark.{marker}")
    raise RuntimeError(f"{what} by a test without the {marker!r} marker: {how}")


_HEAVY = ("slow", "integration", "data")  # what makes a module long, the longest first


def heavy_modules_first(items: Sequence[pytest.Item]) -> list[pytest.Item]:
    """``items`` with the modules that have ``slow`` tests first, then those that use a
    service, then those that read the data folder, then the rest (in collection order within
    each, a module's tests together).

    For ``make test``'s workers (pytest-xdist, a module at a time to whichever worker is
    free; run with --no-loadscope-reorder, which would order modules by their number of
    tests): a minutes-long module started last leaves the other worker idle at the end."""
    rank: dict[str, int] = {}
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        weight = next((i for i, m in enumerate(_HEAVY) if item.get_closest_marker(m)), len(_HEAVY))
        rank[module] = min(rank.get(module, weight), weight)
    return sorted(items, key=lambda item: rank[item.nodeid.split("::", 1)[0]])
