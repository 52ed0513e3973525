"""Display text: the printable fast path of ``visible`` changes nothing the escaping would."""

from __future__ import annotations

import random
import sys

import msgspec

from scorer.alerts.textsafe import _CONTROL, _RAW_UNSAFE, escape_json, visible


def _reference(text: str) -> str:
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def test_visible_equals_the_escaping_on_every_code_point() -> None:
    for start in range(0, sys.maxunicode + 1, 4096):
        text = "".join(chr(c) for c in range(start, min(start + 4096, sys.maxunicode + 1))
                       if not 0xD800 <= c <= 0xDFFF)
        assert visible(text) == _reference(text)
    assert visible("run \x1b[31m red\u2028next\x85") == "run \\x1b[31m red\\u2028next\\x85"
    assert visible("C:\\Windows\\whoami.exe /all (é)") == "C:\\Windows\\whoami.exe /all (é)"


def _escaped_reference(raw: bytes) -> bytes:
    return _RAW_UNSAFE.sub(lambda m: b"\\u%04x" % ord(m.group().decode()), raw)


def test_escape_json_equals_the_regex_on_every_code_point_and_on_raw_bytes() -> None:
    for start in range(0, sys.maxunicode + 1, 2048):
        text = "".join(chr(c) for c in range(start, min(start + 2048, sys.maxunicode + 1))
                       if not 0xD800 <= c <= 0xDFFF)
        raw = msgspec.json.encode({"t": text, "s": "®" * 3})
        assert escape_json(raw) == _escaped_reference(raw)
    rng = random.Random(7)
    alphabet = [b"a", b"\x7f", b"\xc2", b"\xe2", b"\x80", b"\x85", b"\xa8", b"\xa9", b"\xae", b"\x9f", b"\xa0"]
    for _ in range(20_000):
        raw = b"".join(rng.choices(alphabet, k=rng.randrange(0, 12)))
        assert escape_json(raw) == _escaped_reference(raw), raw
    # Past the places looked at one by one, the regex decides: still exact.
    many = "®" * 100
    for tail in ("", "\x85", "\u2028", "\u2029", "\u2027"):
        raw = msgspec.json.encode(many + tail)
        assert escape_json(raw) == _escaped_reference(raw)
    assert escape_json(msgspec.json.encode("Microsoft® Windows®\u2028x\x85")) == (
        b'"Microsoft\xc2\xae Windows\xc2\xae\\u2028x\\u0085"')
