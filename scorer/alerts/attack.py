"""MITRE ATT&CK Enterprise tactics: the names Sigma tags use and their ATT&CK ids.

Sigma rules tag tactics by name (``attack.credential_access``) and techniques by id
(``attack.t1003.001``); an OCSF ``attacks[].tactic`` wants the id as well. The fourteen
Enterprise tactics and their ids are stable across ATT&CK releases.
"""

from __future__ import annotations

TACTIC_IDS: dict[str, str] = {
    "reconnaissance": "TA0043",
    "resource_development": "TA0042",
    "initial_access": "TA0001",
    "execution": "TA0002",
    "persistence": "TA0003",
    "privilege_escalation": "TA0004",
    "defense_evasion": "TA0005",
    "credential_access": "TA0006",
    "discovery": "TA0007",
    "lateral_movement": "TA0008",
    "collection": "TA0009",
    "command_and_control": "TA0011",
    "exfiltration": "TA0010",
    "impact": "TA0040",
}


def tactic_title(name: str) -> str:
    """``command_and_control`` -> ``Command and Control`` (ATT&CK's own spelling).

    >>> tactic_title("command_and_control"), tactic_title("credential_access")
    ('Command and Control', 'Credential Access')
    """
    return " ".join(w if w == "and" else w.capitalize() for w in name.split("_"))
