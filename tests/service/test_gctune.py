"""The collector during a scoring process's start-up: off until the loop is started, then
tuned and on; on again however the start-up ends."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from scorer.service.gctune import YOUNG_THRESHOLD, start_up


@pytest.fixture(autouse=True)
def _restored() -> Iterator[None]:
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_until_started_then_tuned_and_on() -> None:
    gc.enable()
    with start_up() as started:
        assert not gc.isenabled()
        built: list[list[int]] = [[] for _ in range(1000)]  # what start-up keeps
        started()
        assert gc.isenabled() and gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() >= len(built), "start-up's objects are out of the collector's sight"
    assert gc.isenabled()


def test_a_failed_start_up_leaves_the_collector_on() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), start_up():
        assert not gc.isenabled()
        raise RuntimeError("wrong password")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with start_up() as started:
        started()
        assert not gc.isenabled()
    assert not gc.isenabled()
