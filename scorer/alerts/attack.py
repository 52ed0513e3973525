"""MITRE ATT&CK Enterprise tactics: the names Sigma tags use and their ATT&CK ids.

Sigma rules tag tactics by name (``attack.credential_access``) and techniques by id
(``attack.t1003.001``); an OCSF ``attacks[].tactic`` wants the id as well. The fourteen
Enterprise tactics of ATT&CK up to v18 keep their ids. ATT&CK v19 (2026) split Defense
Evasion in two, and SigmaHQ's rules already tag the halves: Stealth kept the old tactic's
id, TA0005, and Defense Impairment is new, TA0112 (from public ATT&CK v19 notes found offline:
elastic/detection-rules issue 6035 and others; the ATT&CK STIX bundle itself is not in the
shared data). ``defense_evasion`` stays for rules not yet re-tagged, with the same id as
``stealth``; ``stealth`` comes after it, so an id-to-name map built from this one names
TA0005 by its current name.
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
    "stealth": "TA0005",
    "defense_impairment": "TA0112",
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
