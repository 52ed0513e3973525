"""Profile keys name the same entity as the events' partition key, so a host's profiles
live in the partition of its events (co-partitioning) whatever the case of its name."""

from __future__ import annotations

import msgspec
import pytest

from scorer.events.structs import EndpointEvent, Event, EventKind, FlowRecord, SiemAlert, entity_key
from scorer.profiles.keys import edr_keys, flow_keys, siem_keys
from scorer.profiles.schema import SEP
from tests.support.samples import events


def _profile_keys(e: Event) -> list[str]:
    if isinstance(e, FlowRecord):
        return list(flow_keys(e))
    if isinstance(e, EndpointEvent):
        return [k for k in edr_keys(e) if k is not None]
    assert isinstance(e, SiemAlert)
    return list(siem_keys(e))


@pytest.mark.data
@pytest.mark.parametrize("kind", list(EventKind))
def test_every_profile_key_names_the_partition_key(kind: EventKind) -> None:
    evs = list(events(kind, 500))
    if kind is not EventKind.NETFLOW:  # the real EDR hosts are upper case; make sure both cases occur
        evs += [msgspec.structs.replace(e, host=e.host.swapcase()) for e in evs[:50]
                if isinstance(e, EndpointEvent | SiemAlert) and e.host]
    for e in evs:
        for k in _profile_keys(e):
            assert k.split(SEP)[1] == entity_key(e), (k, entity_key(e))


def test_hosts_differing_in_case_are_one_entity_only_if_partitioned_together() -> None:
    upper = EndpointEvent(ts=1.0, host="WS1.corp", event_code=1, image="c:\\a.exe")
    lower = msgspec.structs.replace(upper, host="ws1.corp")
    same_partition = entity_key(upper) == entity_key(lower)
    assert (edr_keys(upper).host == edr_keys(lower).host) == same_partition
    alert = SiemAlert(ts=1.0, host="WS1.corp", rule_name="Logon")
    assert (siem_keys(alert).host == siem_keys(msgspec.structs.replace(alert, host="ws1.corp")).host) == same_partition


def test_host_names_fold_case() -> None:
    """Windows and DNS host names are case-insensitive: one host, one partition, one profile."""
    upper = EndpointEvent(ts=1.0, host="WS1.corp", event_code=1, image="c:\\a.exe")
    assert entity_key(upper) == entity_key(msgspec.structs.replace(upper, host="ws1.CORP")) == "ws1.corp"
    assert entity_key(SiemAlert(ts=1.0, host="DC01", rule_name="Logon")) == "dc01"
    assert entity_key(SiemAlert(ts=1.0, src_ip="10.0.0.9", rule_name="Scan")) == "10.0.0.9"
