"""edr/otrf-extra: which captures the EDR dataset reads, their groups, and that a ~100 MB
campaign is streamed (a few lines read, a few MB allocated), never loaded whole."""

from __future__ import annotations

import itertools
import time
import tracemalloc

import pytest

from models import otrf_extra
from models.edr import labeller
from scorer.captures import LabeledEvent, iter_capture
from tests.support.paths import DATA_DIR

EXTRA = DATA_DIR / "edr" / "otrf-extra"
needs_data = pytest.mark.skipif(not EXTRA.is_dir(), reason="otrf-extra not present")
pytestmark = pytest.mark.data


@needs_data
def test_files_and_tactics() -> None:
    files = otrf_extra.files(EXTRA)
    assert sorted(f.stem for f in files) == sorted(otrf_extra.CAPTURES)
    assert {otrf_extra.tactic_of(f) for f in files} == {"credential_access", "multiple"}
    atomic = DATA_DIR / "edr/otrf-security-datasets/windows/discovery/host/cmd_seatbelt_group_user.zip"
    assert otrf_extra.tactic_of(atomic) == "discovery"


@needs_data
def test_campaign_is_streamed() -> None:
    campaign = EXTRA / "LSASS_campaign_05" / "metasploit_sharpdump_lsass_memory_dump.zip"
    tracemalloc.start()
    start = time.perf_counter()
    items = [i for i in itertools.islice(iter_capture(campaign), 20) if isinstance(i, LabeledEvent)]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(items) == 20 and time.perf_counter() - start < 5
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MB allocated to read 20 lines of a 120 MB member"
    truth, group, source, label = labeller(items[0])
    assert (truth, group, source, label) == (0, "otrf-extra:host:MKT01", "otrf", "attack:T1003.001")


def test_same_host_campaigns_share_a_group() -> None:
    groups = {c: e.group for c, e in otrf_extra.CAPTURES.items()}
    mkt = [c for c, g in groups.items() if g.endswith("MKT01")]
    assert len(mkt) == 4 and len(set(groups.values())) == 6


@needs_data
def test_golden_saml_sentinel_export_is_read_as_one_capture() -> None:
    (path,) = EXTRA.glob("GoldenSAMLADFSMailAccess/WindowsEvents.*")
    items = [i for i in iter_capture(path) if isinstance(i, LabeledEvent)]
    assert len(items) == 38 and {i.capture for i in items} == {"WindowsEvents"}
    assert {labeller(i) for i in items} == {(0, "otrf-extra:GoldenSAMLADFSMailAccess", "otrf", "attack:T1606.002")}
    assert otrf_extra.tactic_of(path) == "credential_access"
