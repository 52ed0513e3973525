"""Weak per-event OTRF labels from capture metadata (models/otrf_labels.py), on a small real capture.

empire_shell_net_localgroup_administrators (884 events): the metadata shows Empire agent
1EHYPBVC (powershell, PID 7456 on WORKSTATION5) running ``shell net localgroup
Administrators``. The agent's own PowerShell records and the net.exe -> net1.exe it starts
must be labelled; other hosts' events and unrelated processes must not.
"""

from __future__ import annotations

import pytest

from models.otrf_labels import Agent, agents, agents_by_capture, attack_events
from scorer.captures import LabeledEvent, iter_capture
from scorer.events.structs import EndpointEvent
from tests.support.paths import DATA_DIR

DATA = DATA_DIR
OTRF = DATA / "edr" / "otrf-security-datasets"
CAPTURE = OTRF / "windows" / "discovery" / "host" / "empire_shell_net_localgroup_administrators.zip"
needs_data = pytest.mark.data

VIEW = """(Empire: agents) > agents
Name     La Internal IP     Machine Name      Username                Process            PID    Delay
4SUZ8X62 ps 172.18.39.5     WORKSTATION5      *THESHIRE\\pgustavo      powershell         4092   5/0.0
1EHYPBVC ps 172.18.39.5     WORKSTATION5      *THESHIRE\\pgustavo      powershell         7456   5/0.0

(Empire: agents) > interact 1EHYPBVC
(Empire: 1EHYPBVC) > shell net localgroup Administrators
"""


def test_agents_are_the_driven_ones() -> None:
    assert agents(VIEW) == [Agent("1EHYPBVC", "WORKSTATION5", "THESHIRE\\pgustavo", "powershell", 7456)]
    # No prompt names an agent: every listed agent counts.
    assert [a.pid for a in agents(VIEW.split("(Empire: agents) > interact")[0])] == [4092, 7456]
    assert agents("covenant: no table here") == []


@needs_data
def test_lineage_labels_on_a_real_capture() -> None:
    found = agents_by_capture(OTRF / "_metadata")
    assert found[CAPTURE.stem] == (Agent("1EHYPBVC", "WORKSTATION5", "THESHIRE\\pgustavo", "powershell", 7456),)
    read = [i.event for i in iter_capture(CAPTURE) if isinstance(i, LabeledEvent)]
    events = [e for e in read if isinstance(e, EndpointEvent)]
    assert len(events) == len(read), "an OTRF capture holds endpoint events only"
    flags = attack_events(events, found[CAPTURE.stem])
    assert len(events) == 884 and int(flags.sum()) == 122
    hit = [e for e, f in zip(events, flags, strict=True) if f]
    assert all(isinstance(e, EndpointEvent) and e.host.startswith("WORKSTATION5") for e in hit)
    created = {(e.image or "").lower().rsplit("\\", 1)[-1] for e in hit if e.event_code in (1, 4688)}
    assert created == {"net.exe", "net1.exe"}
    assert any(e.event_code == 4103 and e.fields.get("ExecutionProcessID") == "7456" for e in hit)
    # The other agent's PowerShell and the DC's events stay background.
    missed = [e for e, f in zip(events, flags, strict=True) if not f]
    assert not any(e.fields.get("ExecutionProcessID") == "7456" and "powershell" in e.channel.lower()
                   for e in missed)
    assert not any(isinstance(e, EndpointEvent) and e.host.startswith("MORDORDC") for e in hit)
