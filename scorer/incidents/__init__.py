"""The incident stage's core: Detection Findings in, OCSF Incident Findings (2005) out.

Pure Python, no Kafka: the online job (``python -m streams incidents``) and the offline
evaluation (replay) run the same code. The contract, in the order a finding goes through:

1. ``member = digest(finding, topic=..., partition=..., offset=...)`` (:mod:`.entities`):
   what correlation needs of a Detection Finding, OCSF 1.3 or 1.8 layout, given as the
   decoded JSON dict or as ``decode_finding(raw_bytes)`` (:mod:`.finding_view`, the typed
   view: what the online router reads, cheaper); raises :class:`Unattributed` (a
   ``ValueError``) when it names no entity.
2. ``links.learn(member)`` then ``member = links.resolve(member)`` (:class:`LinkTable`):
   learns host <-> IP links from EDR/SIEM findings and sets ``member.key``, the correlation
   entity (``host:NAME``, else ``ip:ADDR``, else ``user:NAME``).
3. ``correlator.add(member, offset)`` (:class:`Correlator`), members in arrival order
   (finding time drives episodes; far-future times cannot): returns the incident uid it
   joined, a :class:`Suppressed` record, or None for a replayed offset. ``correlator.flush()``
   returns the :class:`Emission` s to publish (Create / Update / Close, coalesced since the
   last flush); ``correlator.close_all()`` at the end of a capture closes the rest;
   ``correlator.changes()`` the changelog (key -> :class:`IncidentState` or None, and
   chunks of the remembered finding uids) and ``correlator.load(key, value)`` restores it
   (``decode_changelog(key, raw)`` reads a record written with ``encode``).
4. ``incident_finding(emission.activity, emission.state)`` (:mod:`.ocsf`): the OCSF 1.8.0
   Incident Finding as a JSON-ready dict; ``encode_incident`` makes its bytes.

In process, for a stream of findings in time order::

    links, corr = LinkTable(), Correlator(Policy())
    for f in findings:
        m = digest(f)
        links.learn(m)
        corr.add(links.resolve(m))
        for e in corr.flush():
            publish(incident_finding(e.activity, e.state))
    for e in corr.close_all():
        publish(incident_finding(e.activity, e.state))

(``flush()`` per finding gives the finest timing; per batch gives fewer Updates.)
"""

from .changelog import decode_changelog
from .entities import Unattributed, digest
from .episodes import Correlator, incident_uid
from .finding_view import Finding, decode_finding
from .links import LinkTable
from .model import (
    Activity,
    Emission,
    IncidentState,
    Member,
    Policy,
    Suppressed,
    decode_member,
    decode_state,
    encode,
)
from .ocsf import encode as encode_incident
from .ocsf import incident_finding, priority_of, severity_of
from .suppression import InvalidRule, SuppressionRule, Suppressions, load_file, parse_rule

__all__ = [
    "Activity",
    "Correlator",
    "Emission",
    "Finding",
    "IncidentState",
    "InvalidRule",
    "LinkTable",
    "Member",
    "Policy",
    "Suppressed",
    "SuppressionRule",
    "Suppressions",
    "Unattributed",
    "decode_changelog",
    "decode_finding",
    "decode_member",
    "decode_state",
    "digest",
    "encode",
    "encode_incident",
    "incident_finding",
    "incident_uid",
    "load_file",
    "parse_rule",
    "priority_of",
    "severity_of",
]
