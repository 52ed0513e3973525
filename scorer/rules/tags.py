"""ATT&CK tactics and techniques from Sigma tags.

>>> tactics_of(("attack.credential-access", "attack.t1003.001", "attack.s0002"))
('credential_access',)
>>> techniques_of(("attack.credential-access", "attack.t1003.001", "attack.T1059"))
('T1003.001', 'T1059')
"""

from __future__ import annotations

import re

# ATT&CK Enterprise tactics (v18 split defense evasion into stealth and defense impairment).
TACTICS = frozenset({
    "reconnaissance", "resource_development", "initial_access", "execution", "persistence",
    "privilege_escalation", "defense_evasion", "stealth", "defense_impairment", "credential_access",
    "discovery", "lateral_movement", "collection", "command_and_control", "exfiltration", "impact",
})
_TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$", re.IGNORECASE)


def tactics_of(tags: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for tag in tags:
        namespace, _, name = tag.partition(".")
        tactic = name.lower().replace("-", "_")
        if namespace.lower() == "attack" and tactic in TACTICS and tactic not in out:
            out.append(tactic)
    return tuple(out)


def techniques_of(tags: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for tag in tags:
        namespace, _, name = tag.partition(".")
        if namespace.lower() == "attack" and _TECHNIQUE.match(name) and name.upper() not in out:
            out.append(name.upper())
    return tuple(out)
