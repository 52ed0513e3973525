"""JSON bytes and display text with no raw control character, for every OCSF record we publish.

Host, user and command-line strings come from the events, so a crafted field could carry
DEL, a C1 control (the 8-bit CSI) or a Unicode line separator into an analyst's terminal or
split a line-based consumer's record. Findings and incidents are encoded with msgspec (valid
UTF-8 JSON: those byte sequences can only be the characters themselves, inside strings), so
replacing them with their ``\\u`` escapes keeps the document equal.
"""

from __future__ import annotations

import re

_RAW_UNSAFE = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_C1_SECOND = frozenset(bytes([b]) for b in range(0x80, 0xA0))  # C2 80-9F: U+0080-U+009F
_SEPARATOR_TAIL = frozenset({b"\x80\xa8", b"\x80\xa9"})  # E2 80 A8/A9: U+2028, U+2029
_LEADS = ((b"\xc2", 1, _C1_SECOND), (b"\xe2", 2, _SEPARATOR_TAIL))  # lead byte, bytes after it, unsafe ones


def escape_json(raw: bytes) -> bytes:
    """``raw`` (msgspec's JSON) with DEL, C1 controls and U+2028/U+2029 as ``\\u`` escapes."""
    # isascii() and one-byte finds are word/memchr-fast (~0.1 us per alert); the regex (~8 us
    # on a 4 kB finding) only runs when the record holds one of the sequences it replaces.
    if raw.isascii() and b"\x7f" not in raw:
        return raw
    if not _may_hold_unsafe(raw):
        return raw
    return _RAW_UNSAFE.sub(lambda m: b"\\u%04x" % ord(m.group().decode()), raw)


def _may_hold_unsafe(raw: bytes, look: int = 64) -> bool:
    """Whether ``raw`` may hold a byte sequence :data:`_RAW_UNSAFE` matches (False: surely
    none), from the places of the lead bytes C2 and E2 only: Windows events carry other
    non-ASCII text (``®`` is C2 AE) in every other finding. Past ``look`` places: maybe."""
    if b"\x7f" in raw:
        return True
    for lead, width, unsafe in _LEADS:
        i = raw.find(lead)
        while i >= 0:
            look -= 1
            if look < 0 or raw[i + 1 : i + 1 + width] in unsafe:
                return True
            i = raw.find(lead, i + 1)
    return False


def visible(text: str) -> str:
    """Display text (titles, descriptions): control characters shown as escapes (``\\x1b``)."""
    # Every character the pattern replaces (Cc, Zl, Zp) is non-printable: a printable text,
    # the common case, needs no regex pass.
    if text.isprintable():
        return text
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
