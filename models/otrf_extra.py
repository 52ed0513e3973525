"""``edr/otrf-extra``: more OTRF captures, read by the EDR dataset as groups of their own.

What each capture is, from the data folder's README (the LSASS campaigns ship no README of
their own; the data README names them) and the GoldenSAML folder's README. Labels are per
capture, as for the atomic captures: every capture is an attack capture, and most of its
events are ordinary background activity of the host.

- ``LSASS_campaign_01..07``: Metasploit sessions dumping LSASS memory seven ways
  (``logonpasswords``, procdump, comsvcs MiniDump, Out-Minidump, SharpDump, Outflank
  Dumpert, nanodump), each a full host log of 40k-60k events around one attack: ATT&CK
  T1003.001 (OS Credential Dumping: LSASS Memory), credential access. Four of the seven
  were recorded on the same host, MKT01 (01 in August; 05, 06 and 07 overlapping in time
  on 5-6 September 2023), so those four share one split group: a model evaluated on one of
  them has not trained on that host's background from another. Detection stays per
  capture (campaign).
- ``aptsimulator_cobaltstrike``: APTSimulator (a batch script that makes a host look
  compromised: collection, C2 beacons, credential access, defence evasion, discovery,
  execution, lateral movement, persistence) with a Cobalt Strike beacon; several tactics in
  one capture, so it is its own tactic row ("multiple").
- ``GoldenSAMLADFSMailAccess/WindowsEvents`` (capture ``WindowsEvents``, the file's stem):
  SimuLand's Golden SAML lab, an actor stealing the AD FS token-signing certificate (AD FS
  DKM key read from the directory, 4662 on DC01; AD FS database and pipe access on ADFS01)
  to forge SAML tokens: ATT&CK T1606.002 (Forge Web Credentials: SAML Tokens), credential
  access. 38 Windows events of a Microsoft Sentinel export (``TimeGenerated``,
  ``EventSourceName``, flattened ``EventData``), which the EDR adapter decodes; its own
  split group. The folder's other exports (Azure AD, Defender, Office) are not shipped here.

Streaming: each campaign is one JSON member of ~80-120 MB inside its zip;
``scorer.captures`` reads zip members line by line (``ZipFile.open`` iterated), and the
dataset builder holds one capture's events at a time (``models.datasets.build``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Extra:
    technique: str  # capture label, as the atomic captures' "attack:<technique>"
    tactic: str  # row of the per-tactic table
    group: str  # split group


_LSASS = "T1003.001"
CAPTURES: dict[str, Extra] = {
    "metasploit_logonpasswords_lsass_memory_dump": Extra(_LSASS, "credential_access", "otrf-extra:host:MKT01"),
    "metasploit_procdump_lsass_memory_dump": Extra(_LSASS, "credential_access", "otrf-extra:host:ACCT01"),
    "metasploit_comsvcs_lsass_memory_dump": Extra(_LSASS, "credential_access", "otrf-extra:host:PRD01"),
    "metasploit_out-minidump_lsass_memory_dump": Extra(_LSASS, "credential_access", "otrf-extra:host:IT01"),
    "metasploit_sharpdump_lsass_memory_dump": Extra(_LSASS, "credential_access", "otrf-extra:host:MKT01"),
    "metasploit_outflank-dumpert_lsass_memory_dump": Extra(_LSASS, "credential_access", "otrf-extra:host:MKT01"),
    "metasploit_nanodump_lsass_memory_dump": Extra(_LSASS, "credential_access", "otrf-extra:host:MKT01"),
    "aptsimulator_cobaltstrike": Extra("aptsimulator", "multiple", "otrf-extra:aptsimulator_cobaltstrike"),
    "WindowsEvents": Extra("T1606.002", "credential_access", "otrf-extra:GoldenSAMLADFSMailAccess"),
}


def files(root: Path) -> list[Path]:
    """The capture files under ``root`` (``.../edr/otrf-extra``) that the dataset reads."""
    found = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() == ".zip"]
    return sorted(p for p in found if p.stem in CAPTURES)


def tactic_of(path: Path) -> str:
    """The per-tactic row of a capture file: OTRF files atomic captures under
    ``windows/<tactic>/host/``; the extra captures are looked up."""
    extra = CAPTURES.get(path.stem)
    return extra.tactic if extra is not None else path.parent.parent.name
