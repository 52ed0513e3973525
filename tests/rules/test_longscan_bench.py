"""scorer.bench.longscan's events: every EventData string the decoder accepts longer made long,
the rest (timestamps, numbers) as they were, so each side evaluates the same decodable events."""

from __future__ import annotations

from scorer.bench.longscan import _long_event
from scorer.events import edr
from scorer.rules.matchers import LONG_VALUE

FILLER = " " + "z" * LONG_VALUE


def _event(**data: object) -> dict[str, object]:
    system = {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Computer": "ws1",
              "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}}}
    return {"Event": {"System": system, "EventData": data}}


def test_strings_that_decode_longer_are_made_long() -> None:
    raw = _event(UtcTime="2024-01-01 00:00:00.000", ProcessId="4242", CommandLine="whoami /all",
                 Image="C:\\Windows\\System32\\whoami.exe", Hashes="SHA1=ABC", Count=3)
    plain, long = edr.from_mapping(raw), _long_event(raw, FILLER)
    assert long.ts == plain.ts and long.process_id == plain.process_id
    assert long.command_line == "whoami /all" + FILLER and long.image == f"{plain.image}{FILLER}"
    assert long.fields["Hashes"] == "SHA1=ABC" + FILLER
    assert raw["Event"]["EventData"]["CommandLine"] == "whoami /all"  # type: ignore[index]  # not changed in place
