"""The state machine behind deploy --shadow / promote / rollback (no Kafka)."""

from __future__ import annotations

import pytest

from scorer.errors import ModelError
from scorer.lifecycle import transitions as t
from scorer.lifecycle.control import ServingStatus

ISSUE = t.Issue("siem", "siem_classifier", "ana@soc", "because", 1)


def test_shadow_promote_rollback_and_back_again() -> None:
    shadow = t.deploy_shadow(ISSUE, None, "1", "2")
    assert (shadow.production, shadow.shadow, shadow.previous, shadow.action) == ("1", "2", None, "deploy-shadow")
    assert shadow.issued_by == "ana@soc" and shadow.reason == "because" and shadow.issued_at
    promoted = t.promote(ISSUE, shadow, "1")
    assert (promoted.production, promoted.shadow, promoted.previous) == ("2", None, "1")
    rolled = t.rollback(ISSUE, promoted, "2")
    assert (rolled.production, rolled.shadow, rolled.previous) == ("1", None, "2")
    again = t.rollback(ISSUE, rolled, "1")  # a rollback undoes a rollback
    assert (again.production, again.previous) == ("2", "1")


def test_refusals() -> None:
    with pytest.raises(ModelError, match="no shadow version to promote"):
        t.promote(ISSUE, None, "1")
    with pytest.raises(ModelError, match="nothing to roll back to"):
        t.rollback(ISSUE, None, "1")
    with pytest.raises(ModelError, match="already in production"):
        t.deploy_shadow(ISSUE, None, "1", "1")
    assert t.promote(ISSUE, None, "1", "3").production == "3"  # explicit version, no shadow first


def test_shadow_keeps_previous_and_clear_drops_the_shadow() -> None:
    promoted = t.promote(ISSUE, t.deploy_shadow(ISSUE, None, "1", "2"), "1")
    shadow3 = t.deploy_shadow(ISSUE, promoted, "2", "3")
    assert shadow3.previous == "1"
    cleared = t.clear_shadow(ISSUE, shadow3, "2")
    assert (cleared.production, cleared.shadow, cleared.previous) == ("2", None, "1")


def test_current_production_prefers_control_then_reports_then_config() -> None:
    desired = t.deploy_shadow(ISSUE, None, "4", "5")
    old = ServingStatus(process="a", kind="siem", model="m", production="2", at="2024-01-01T00:00:00Z")
    new = ServingStatus(process="b", kind="siem", model="m", production="3", at="2024-01-02T00:00:00Z")
    assert t.current_production(desired, [old, new], "1")[0] == "4"
    assert t.current_production(None, [old, new], "1")[0] == "3"
    assert t.current_production(None, [], "1")[0] == "1"
    with pytest.raises(ModelError, match="--production"):
        t.current_production(None, [], "")
