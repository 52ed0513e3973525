"""SIEM adapters: the AIT-ADS ground truth stays out of the event a finding is built from."""

from __future__ import annotations

import msgspec

from scorer.events.siem import from_ait


def test_ait_ground_truth_is_only_the_label() -> None:
    row = {"time": "1642374000", "name": "Wazuh: web scan", "ip": "10.35.35.206", "host": "intranet",
           "short": "W-Acc-3", "time_label": "dirb", "event_label": "dirb"}
    event = from_ait(row)
    assert (event.label, event.fields, event.source_system) == ("dirb", {}, "wazuh")
    # label is never encoded into a finding (scorer.alerts); nothing else may carry the phase.
    assert b"dirb" not in msgspec.json.encode(msgspec.structs.replace(event, label=None))
    assert from_ait({**row, "event_label": ""}).label == "benign"
