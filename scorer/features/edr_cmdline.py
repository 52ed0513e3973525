"""EDR block of feature set v3: command-line shape and parent/child pairs.

v1 counts tradecraft *tokens* in a command line; this block reads its *shape*, which
survives renamed tools and unseen keywords: character entropy, number and length of
arguments, obfuscation marks (carets, backticks, string concatenation, variable substrings,
case switching inside words, character-code arithmetic), an embedded Base64 argument that
decodes to text, network targets (URL, IP literal, UNC path) and a LOLBin given one. Parent /
child pairs that attackers produce and software rarely does (Office, WMI, the service control
manager or LSASS starting a shell or LOLBin) are flags. Rarity of a process or pair *on its
host* is the profile columns of v2 (host novelty), which v3 carries too.

Every value is computed once per distinct (raw) command line or (parent, image) pair.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Sequence

from scorer.events.structs import EndpointEvent
from scorer.features.base import F64, column
from scorer.features.edr import LOLBINS, OFFICE, SCRIPT_HOSTS
from scorer.features.edr_batch import JOIN, SEP, EdrBatch, Group, split_key
from scorer.features.texts import text_memo

SHAPE_NAMES = ("cl_entropy", "cl_log_args", "cl_log_longest_arg", "cl_obfuscation", "cl_case_switching",
               "cl_char_codes", "cl_env_var", "cl_network", "cl_b64_text", "cl_lolbin_network")
PAIR_NAMES = ("pc_office_shell", "pc_wmi_shell", "pc_service_shell", "pc_lsass_child", "pc_script_lolbin")
NAMES: tuple[str, ...] = SHAPE_NAMES + PAIR_NAMES
# Entropy, argument counts and lengths describe any command line; the rest only raise suspicion.
INDICATORS: tuple[str, ...] = tuple(n for n in NAMES if n not in ("cl_entropy", "cl_log_args",
                                                                   "cl_log_longest_arg"))

SHELLS = SCRIPT_HOSTS | LOLBINS
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_B64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
_ENV = re.compile(r"%[a-z_][a-z0-9_]*(?::~[-\d,]+)?%|\$env:", re.IGNORECASE)
_CHAR_CODES = ("[char]", "char(", "chr(", "-join", "-bxor", "[convert]::toint", "frombase64")
_CONCAT = ("'+'", "\"+\"", "' + '", "\" + \"")
_NETWORK = ("http://", "https://", "ftp://", "\\\\")


def cmdline_columns(evs: Sequence[EndpointEvent], images: list[str], parents: list[str]) -> dict[str, F64]:
    """Every column of :data:`NAMES`. ``images`` / ``parents``: each event's lower-case image
    and parent basename, as v1 computes them."""
    b = EdrBatch(evs, NAMES, "cmdline_columns")
    put_cmdline(b, images, parents)
    return b.sheet.columns()


def put_cmdline(b: EdrBatch, images: list[str], parents: list[str]) -> None:
    """Every column of :data:`NAMES`, into ``b.sheet``."""
    # A batch without command lines (or parents) leaves its columns 0: most small batches.
    lines = column(b.events, "command_line")
    if any(lines):
        text = b.texts([image + SEP + line if line else "" for image, line in zip(images, lines, strict=True)])
        b.sheet.put_texts(SHAPE_NAMES[0], len(SHAPE_NAMES), text, _cached_shape)
    if any(parents):
        pairs = b.texts([parent + SEP + image if parent else "" for parent, image in zip(parents, images, strict=True)])
        b.sheet.put_texts(PAIR_NAMES[0], len(PAIR_NAMES), pairs, _cached_pair)


def entropy(text: str) -> float:
    """Shannon entropy of the characters, bits per character."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _shape(value: str) -> tuple[float, ...]:
    image, line = value.split(SEP, 1)
    lower = line.lower()
    args = line.split()
    marks = (line.count("^") + line.count("`") + sum(lower.count(c) for c in _CONCAT)
             + lower.count(":~"))
    network = bool(_IPV4.search(line)) or any(n in lower for n in _NETWORK)
    return (entropy(line), math.log1p(len(args)), math.log1p(max((len(a) for a in args), default=0)),
            math.log1p(marks), _case_switching(line), float(any(c in lower for c in _CHAR_CODES)),
            float(bool(_ENV.search(line))), float(network), float(_b64_text(line)),
            float(network and image in LOLBINS and image not in ("powershell.exe", "pwsh.exe", "cmd.exe")))


def _case_switching(line: str) -> float:
    """Lower-to-upper switches inside words per letter (``PoWeRsHeLl`` is 0.4, prose ~0.02)."""
    letters = switches = 0
    previous_lower = False
    for ch in line:
        if ch.isalpha():
            letters += 1
            if previous_lower and ch.isupper():
                switches += 1
            previous_lower = ch.islower()
        else:
            previous_lower = False
    return switches / letters if letters >= 8 else 0.0


def _b64_text(line: str) -> bool:
    """An argument of 24+ Base64 characters that decodes to readable text (UTF-16LE, as
    PowerShell's -EncodedCommand, or ASCII)."""
    for token in _B64.findall(line):
        if token.isalpha() or token.isdigit():
            continue  # a long word or number, not an encoding
        raw = token[: len(token) - len(token) % 4]
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(data) >= 12 and ((_printable(data[0::2]) and data[1::2].count(0) > len(data) // 3)
                                or _printable(data)):
            return True
    return False


def _printable(data: bytes) -> bool:
    return bool(data) and sum(32 <= b < 127 or b in (9, 10, 13) for b in data) >= 0.9 * len(data)


def _pair(value: str) -> tuple[float, ...]:
    parent, image = split_key(value, 2)
    shell = image in SHELLS
    return (float(parent in OFFICE and shell), float(parent == "wmiprvse.exe" and shell),
            float(parent == "services.exe" and image in SCRIPT_HOSTS), float(parent == "lsass.exe"),
            float(parent in SCRIPT_HOSTS and image in LOLBINS and image not in SCRIPT_HOSTS))


# Command lines and parent/child pairs recur across batches (an attack's tools, a host's
# services), and a line's entropy, regexes and Base64 decoding are the costly part of the block.
_cached_shape, _cached_pair = text_memo(_shape), text_memo(_pair)
# put_cmdline's columns as the native pass runs them (slots "image" and "parent": v1's basenames).
GROUPS: tuple[Group, ...] = (
    Group(SHAPE_NAMES[0], len(SHAPE_NAMES), _cached_shape, (("p", "image"), ("a", "command_line")), JOIN, require=1),
    Group(PAIR_NAMES[0], len(PAIR_NAMES), _cached_pair, (("p", "parent"), ("p", "image")), JOIN, require=0),
)
