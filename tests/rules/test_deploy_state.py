"""The state logic of rule-pack deployment, without Kafka: control keys, transitions on a
pack's key, where the CLI finds production, the trained-pack check, a pack's own checks, and
the per-rule / per-alert comparison the rule shadow publishes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from scorer.config import RuleSettings, Settings
from scorer.errors import ModelError
from scorer.inference.repository import load_version
from scorer.lifecycle import transitions
from scorer.lifecycle.contract import trained_rule_pack
from scorer.lifecycle.loader import Refused
from scorer.lifecycle.ops import Context
from scorer.lifecycle.rulepacks import (
    check_pack,
    control_key,
    identity,
    pack_checksum,
    pack_of,
    trained_identity,
    untrained_warning,
)
from scorer.lifecycle.shadow import rule_changes
from scorer.pipeline.rules import RuleShadow
from tests.support.paths import MODEL_REPOSITORY, RULE_REPOSITORY
from tests.support.rulepacks import LOWERED, PACK, derive, shipped_repository

KEY = control_key(PACK)


def issue() -> transitions.Issue:
    return transitions.Issue(KEY, PACK, "t", "why", 0)


def test_control_keys_tell_packs_from_kinds() -> None:
    assert KEY == "rules/sigma_windows" and pack_of(KEY) == PACK
    assert pack_of("edr") is None


def test_transitions_on_a_pack_key() -> None:
    shadow = transitions.deploy_shadow(issue(), None, "1", "2")
    assert (shadow.kind, shadow.model, shadow.production, shadow.shadow) == (KEY, PACK, "1", "2")
    promoted = transitions.promote(issue(), shadow, "1")
    assert (promoted.production, promoted.shadow, promoted.previous) == ("2", None, "1")
    rolled = transitions.rollback(issue(), promoted, "2")
    assert (rolled.production, rolled.previous, rolled.action) == ("1", "2", "rollback")
    with pytest.raises(ModelError, match="already in production"):
        transitions.deploy_shadow(issue(), rolled, "1", "1")


def test_cli_context_names_the_pack_and_its_configured_version(tmp_path: Path) -> None:
    repo = shipped_repository(tmp_path)
    derive(repo, LOWERED, level="low")
    settings = Settings(rules=RuleSettings(repository=repo))
    ctx = Context(settings, settings.lifecycle, repo)
    assert ctx.model(KEY) == PACK and ctx.configured(KEY) == LOWERED, "unpinned: the highest version"
    pinned = Settings(rules=RuleSettings(repository=repo, version="1"))
    assert Context(pinned, pinned.lifecycle, repo).configured(KEY) == "1"
    assert transitions.current_production(None, [], ctx.configured(KEY))[0] == LOWERED


def test_the_edr_card_names_its_training_pack() -> None:
    card = load_version(MODEL_REPOSITORY, "edr_classifier").card
    trained = trained_rule_pack(card)
    assert trained is not None and trained.pack == PACK
    assert trained.sha256 == pack_checksum(RULE_REPOSITORY / PACK / trained.version)
    assert trained_rule_pack(load_version(MODEL_REPOSITORY, "siem_classifier").card) is None


def test_a_pack_giving_other_features_warns_a_tuned_one_does_not(tmp_path: Path) -> None:
    card = load_version(MODEL_REPOSITORY, "edr_classifier").card
    trained = trained_rule_pack(card)
    assert trained is not None
    repo = shipped_repository(tmp_path)
    relevelled = identity(derive(repo, LOWERED, level="low"))
    at_hand = trained_identity(repo, card)
    assert at_hand is not None
    assert untrained_warning(card, PACK, "1", identity(repo / PACK / "1"), at_hand) is None
    warning = untrained_warning(card, PACK, LOWERED, relevelled, at_hand)
    assert warning is not None and f"trained on rule pack {PACK}:{trained.version}" in warning
    # The same rules, levels and IR under another checksum (a pack that only changes which
    # rules alert on their own, as the shipped tuning does): the model reads the same features.
    tuned = repo / PACK / "17"
    shutil.copytree(repo / PACK / "1", tuned)
    (tuned / "LICENSE").write_text((tuned / "LICENSE").read_text() + "\n")
    assert identity(tuned).checksum != at_hand.checksum
    assert untrained_warning(card, PACK, "17", identity(tuned), at_hand) is None
    assert untrained_warning(card, PACK, "17", identity(tuned), None) is not None, "nothing to compare: warn"


def test_a_pack_copied_under_another_version_is_refused(tmp_path: Path) -> None:
    repo = shipped_repository(tmp_path)
    shutil.copytree(repo / PACK / "1", repo / PACK / "15")
    with pytest.raises(Refused, match=r"pack\.json: names version '1', its directory is '15'") as caught:
        check_pack(repo, PACK, "15")
    assert caught.value.reason == "load"


def test_rule_changes_per_rule_and_per_alert() -> None:
    shadow = RuleShadow(
        production=f"{PACK}:1", candidate=f"{PACK}:2",
        production_hits=[("a",), ("a", "b"), (), ("c",)],
        candidate_hits=[("a",), ("a",), ("d",), ("c",)],
        production_alerts={1: "High", 3: "High"},  # rows 1 and 3 alert on their rules
        candidate_alerts={2: "Critical", 3: "High"},
        x=np.zeros((4, 1), np.float32), errors=1,
    )
    p = np.array([0.9, 0.1, 0.1, 0.1], np.float32)  # row 0 alerts on the model (threshold 0.5)
    s = np.array([0.9, 0.1, 0.2, 0.1], np.float32)
    uids = ["u0", "u1", "u2", "u3"]
    changes = rule_changes(shadow, slice(0, 4), uids, p, s, (0.5, 0.5))
    assert changes.hits_added == {"d": 1} and changes.hits_removed == {"b": 1}
    assert changes.alerts_added == ["u2"] and changes.alerts_removed == ["u1"]
    assert changes.score_changed == 1 and changes.max_abs_score_diff == pytest.approx(0.1)
    assert changes.errors == 1
    tail = rule_changes(shadow, slice(2, 4), uids[2:], p[2:], s[2:], (0.5, 0.5))
    assert tail.alerts_added == ["u2"] and tail.alerts_removed == [] and tail.errors == 0, "a chunk's own rows"
    failed = rule_changes(RuleShadow(f"{PACK}:1", f"{PACK}:2", [()], [], {}, {}, shadow.x, failed="boom"),
                          slice(0, 1), ["u0"], p[:1], p[:1], (0.5, 0.5))
    assert failed.failed == "boom" and failed.alerts_removed == []
