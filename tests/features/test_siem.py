"""SIEM features, value by value: every column of the matrix against its definition, computed
here alert by alert, on alerts built around the columns' edges (known, upper-case and unknown
systems, no and out-of-range severities, keywords and tokens in mixed case, hosts named or
only by IP, rules by id or by name, a rule seen again after the window, a very long name), whole and one
alert a batch, and an empty batch."""

from __future__ import annotations

import math
import re

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scorer.native
from scorer.events.structs import SiemAlert
from scorer.features.base import stable_hash
from scorer.features.siem import KEYWORDS, SYSTEMS, TOKEN_BUCKETS, SiemFeatures
from tests.features.test_netflow import same_as_definitions
from tests.support.native import use_native


def _alerts() -> list[SiemAlert]:
    return [
        SiemAlert(ts=0.0, rule_name="SSH brute force: multiple FAILED logins", source_system="Wazuh", host="h1",
                  severity=20, rule_id="5712"),
        SiemAlert(ts=1.0, rule_name="ET SCAN Nmap probe", source_system="suricata", src_ip="10.0.0.5", severity=-3),
        SiemAlert(ts=2.0, rule_name="New value in apache log", source_system="aminer", host="h1"),
        SiemAlert(ts=3.0, rule_name="SSH brute force: multiple FAILED logins", source_system="wazuh", host="h1",
                  severity=7, rule_id="5712"),
        SiemAlert(ts=4.0, rule_name="x", source_system="splunk", severity=0),
        SiemAlert(ts=90.0, rule_name="New value in apache log", source_system="SIGMA", host="h1", severity=15),
        # A name longer than the rows the feature set caches (the uncached way, the same values).
        SiemAlert(ts=91.0, rule_name="Web attack " + "padding " * 80 + "SQL injection", source_system="zeek",
                  host="h2"),
    ]


def _expected(alerts: list[SiemAlert]) -> list[dict[str, float]]:
    """Each alert's features by their definitions (per host, or its IP; per rule id, or its
    name; the window: the host's alerts of the 60 s before it, itself included)."""
    out = []
    for i, a in enumerate(alerts):
        name, system = a.rule_name.lower(), a.source_system.lower()
        host, rule = a.host or a.src_ip or "", a.rule_id or name
        earlier = [b for b in alerts[:i] if (b.host or b.src_ip or "") == host]
        window = [b for b in [*earlier, a] if b.ts >= a.ts - 60.0]
        rules = [b.rule_id or b.rule_name.lower() for b in window]
        seen = [b.ts for b in earlier if (b.rule_id or b.rule_name.lower()) == rule]
        severity = -1.0 if a.severity is None else float(a.severity)
        tokens = {stable_hash(t) % TOKEN_BUCKETS for t in re.findall(r"[a-z0-9_]{2,}", name)}
        row = {f"sys_{s}": float(system == s) for s in SYSTEMS}
        row |= {"sys_other": float(system not in SYSTEMS), "has_severity": float(severity >= 0),
                "severity": min(max(severity, 0.0), 15.0) / 15.0}
        row |= {f"kw_{k}": float(any(n in name for n in needles)) for k, needles in KEYWORDS.items()}
        row |= {"host_rule_60s": math.log1p(rules.count(rule)), "host_alerts_60s": math.log1p(len(window)),
                "host_rules_60s": math.log1p(len(set(rules))), "host_rule_first_seen": float(not seen),
                "log_since_rule_s": math.log1p(min(a.ts - max(seen), 86_400.0) if seen else 86_400.0),
                "host_rule_share_60s": rules.count(rule) / len(window)}
        row |= {f"tok_{b}": float(b in tokens) for b in range(TOKEN_BUCKETS)}
        out.append(row)
    return out


@pytest.mark.parametrize("native", ["0", "1"])
@pytest.mark.parametrize("batch", [1, 4, 6])
def test_every_column_is_its_definition(monkeypatch: pytest.MonkeyPatch, native: str, batch: int) -> None:
    use_native(monkeypatch, native)
    alerts = _alerts()
    same_as_definitions(SiemFeatures(), alerts, _expected(alerts), batch)


def test_severity_rows_are_numpys_clip_and_divide() -> None:
    """The per-distinct-severity rows give the bytes numpy's column code gave (-0.0 clipped to
    0.0, the bounds, values beside them)."""
    import numpy as np

    from scorer.features.siem import _severity_row

    levels = [-0.0, 0.0, -1.0, 1e-300, -1e-300, 15.0, float(np.nextafter(15.0, 0.0)), float(np.nextafter(15.0, 99.0)),
              7.0, 3.3, 1e300, -1e300, 2.0**62, 0.5, *(x / 7.0 for x in range(-40, 140))]
    sev = np.array(levels)
    block = np.empty((len(levels), 2))
    block[:, 0] = sev >= 0
    np.divide(np.clip(sev, 0.0, 15.0), 15.0, out=block[:, 1])
    assert np.array([_severity_row(v) for v in levels]).tobytes() == block.tobytes()


_NAMES = ["", "x", "SSH brute force: multiple FAILED logins", "ET SCAN Nmap probe", "İSTANBUL Login",
          "Web attack " * 60]
_SYSTEMS = ["", "wazuh", "WAZUH", "Suricata", "splunk", "ünknown"]
_SEVERITIES: list[object] = [None, 0, -1, 7, 20, 2**2000, 7.5, -0.0, float("nan"), float("inf"), True, "5"]


@st.composite
def _hostile(draw: st.DrawFn) -> list[SiemAlert]:
    n = draw(st.integers(0, 20))
    return [SiemAlert(ts=draw(st.sampled_from([0.0, 5.0, 70.0])), rule_name=draw(st.sampled_from(_NAMES)),
                      source_system=draw(st.sampled_from(_SYSTEMS)), severity=draw(st.sampled_from(_SEVERITIES)),  # type: ignore[arg-type]
                      host=draw(st.sampled_from([None, "", "h1"])), rule_id=draw(st.sampled_from([None, "", "r1"])),
                      src_ip=draw(st.sampled_from([None, "10.0.0.1"]))) for _ in range(n)]


@pytest.mark.skipif(scorer.native.built_module("_edr") is None, reason="scorer.native._edr is not built")
@settings(max_examples=200, deadline=None)
@given(batches=st.lists(_hostile(), min_size=1, max_size=4), odd=st.sampled_from([None, 3, "name", b"x"]))
def test_the_native_pass_gives_the_references_matrix(batches: list[list[SiemAlert]], odd: object) -> None:
    """The text and severity columns' native pass (a Plan of GROUPS) against the reference on
    hostile alerts: the same matrix, or the same error (a name or system that is not a text)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_native(monkeypatch, "1")
        native, reference = SiemFeatures(), SiemFeatures()
        for alerts in batches:
            if odd is not None and alerts:
                alerts[0] = msgspec.structs.replace(alerts[0], rule_name=odd)
            # Taken unless a name is not a text or a severity is a bool (numbers() reads it as 1.0).
            plain = {type(a.severity) for a in alerts} <= {type(None), int, float, str} and all(
                type(a.rule_name) is str for a in alerts)
            assert (native.plan.sheet(alerts) is not None) == plain
            try:
                expected = reference._reference(alerts)
            except Exception as exc:
                with pytest.raises(type(exc)):
                    native.transform(alerts)
                continue
            assert native.transform(alerts).tobytes() == expected.tobytes()
