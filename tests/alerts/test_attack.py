from __future__ import annotations

from scorer.alerts.attack import TACTIC_IDS, tactic_title
from scorer.rules.model import TACTICS, tactics_of


def test_every_tactic_a_rule_can_carry_has_an_attack_id() -> None:
    # A tactic the rules stage reads from a Sigma tag but that has no id here is silently
    # dropped from the finding's attacks[] (scorer/alerts/ocsf.py), so the two must agree.
    assert set(TACTIC_IDS) == TACTICS


def test_v19_split_of_defense_evasion() -> None:
    assert tactics_of(("attack.stealth", "attack.defense-impairment")) == ("stealth", "defense_impairment")
    assert TACTIC_IDS["stealth"] == TACTIC_IDS["defense_evasion"] == "TA0005"
    assert TACTIC_IDS["defense_impairment"] == "TA0112"
    # The id-to-name maps the incident stage builds name TA0005 by its current name.
    names = {uid: tactic_title(name) for name, uid in TACTIC_IDS.items()}
    assert names["TA0005"] == "Stealth" and names["TA0112"] == "Defense Impairment"


def test_ids_are_distinct_but_for_the_renamed_tactic() -> None:
    by_id: dict[str, list[str]] = {}
    for name, uid in TACTIC_IDS.items():
        by_id.setdefault(uid, []).append(name)
    assert {uid: names for uid, names in by_id.items() if len(names) > 1} == {"TA0005": ["defense_evasion", "stealth"]}
