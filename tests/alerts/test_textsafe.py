"""Display text: the printable fast path of ``visible`` changes nothing the escaping would."""

from __future__ import annotations

import sys

from scorer.alerts.textsafe import _CONTROL, visible


def _reference(text: str) -> str:
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def test_visible_equals_the_escaping_on_every_code_point() -> None:
    for start in range(0, sys.maxunicode + 1, 4096):
        text = "".join(chr(c) for c in range(start, min(start + 4096, sys.maxunicode + 1))
                       if not 0xD800 <= c <= 0xDFFF)
        assert visible(text) == _reference(text)
    assert visible("run \x1b[31m red\u2028next\x85") == "run \\x1b[31m red\\u2028next\\x85"
    assert visible("C:\\Windows\\whoami.exe /all (é)") == "C:\\Windows\\whoami.exe /all (é)"
