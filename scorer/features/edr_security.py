"""EDR block of feature set v3: the Windows Security channel, what v1 only saw as "logon".

Event IDs are grouped into families finer than v1's behaviours (Kerberos TGT vs service
ticket, account vs group changes, group enumeration, directory access, token rights...).
Within a family the fields an analyst reads are turned into flags: logon type and
authentication package, failure codes (``Status`` / ``SubStatus`` / ``FailureReason``),
Kerberos ticket options and encryption types (RC4 ``0x17`` ...), privileges named in
``PrivilegeList`` / ``EnabledPrivilegeList``, privileged groups by SID or name, and which
process enumerated a group. Every field is read once per distinct value of the batch
(:class:`~scorer.features.texts.Texts`), gated by the event IDs that define it, so a
``Status`` of a process exit (4689) is not read as a logon failure.

``INDICATORS`` names the columns that can only make an event more suspicious (a model may
constrain its score to be non-decreasing in them); family columns are descriptive.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from operator import methodcaller

import numpy as np

from scorer.events.structs import EndpointEvent
from scorer.features.base import F64
from scorer.features.edr_batch import JOIN, RAW, SEP, EdrBatch, Group, split_key
from scorer.features.texts import Needles, Texts, factorize, text_memo

FAMILIES: dict[str, frozenset[int]] = {
    "sec_logon": frozenset({4624}),
    "sec_logon_failed": frozenset({4625, 4771}),
    "sec_logon_explicit": frozenset({4648}),
    "sec_logoff": frozenset({4634, 4647}),
    "sec_special_logon": frozenset({4672, 4964}),
    "sec_kerberos_tgt": frozenset({4768}),
    "sec_kerberos_service": frozenset({4769, 4770}),
    "sec_ntlm_validation": frozenset({4776}),
    "sec_account_change": frozenset({4720, 4722, 4723, 4724, 4725, 4726, 4738, 4740, 4741, 4742, 4743,
                                     4765, 4766, 4767, 4780, 4781, 4794}),
    "sec_group_change": frozenset({4727, 4728, 4729, 4730, 4731, 4732, 4733, 4734, 4735, 4737, 4754,
                                   4755, 4756, 4757, 4758}),
    "sec_group_enum": frozenset({4798, 4799}),
    "sec_service_install": frozenset({7045, 4697}),
    "sec_task_change": frozenset({4698, 4699, 4700, 4701, 4702}),
    "sec_ds_access": frozenset({4662}),
    "sec_ds_change": frozenset({5136, 5137, 5138, 5139, 5141}),
    "sec_sam_access": frozenset({4661}),
    "sec_share": frozenset({5140, 5142, 5143, 5144}),
    "sec_share_file": frozenset({5145}),
    "sec_object_handle": frozenset({4656, 4658, 4660, 4663, 4670, 4690}),
    "sec_privilege_use": frozenset({4673, 4674}),
    "sec_token_rights": frozenset({4703}),
    "sec_policy_change": frozenset({4713, 4719, 4739, 4902, 4904, 4905, 4906, 4907, 4912}),
    "sec_log_cleared": frozenset({1102, 1100, 104}),
    "sec_credential_read": frozenset({5379, 5381, 5382}),
    "sec_dpapi": frozenset({4692, 4693, 4695}),
    "sec_firewall_change": frozenset({4946, 4947, 4948, 4950, 2004, 2005, 2006}),
}
FAMILY_NAMES = tuple(FAMILIES)
LOGON_TYPES: dict[str, tuple[int, ...]] = {
    "sec_logon_interactive": (2, 11), "sec_logon_batch_service": (4, 5), "sec_logon_unlock": (7,),
    "sec_logon_cleartext": (8,), "sec_logon_new_credentials": (9,),
}
AUTH_NAMES = ("sec_auth_ntlm", "sec_auth_ntlm_v1", "sec_auth_ntlm_no_key", "sec_auth_seclogo")
FAILURE_NAMES = ("sec_fail_bad_password", "sec_fail_unknown_user", "sec_fail_account_state", "sec_fail_other")
KERBEROS_NAMES = ("sec_kerb_rc4", "sec_kerb_des", "sec_kerb_forwarded", "sec_kerb_no_canonicalize",
                  "sec_kerb_s4u", "sec_kerb_u2u", "sec_kerb_no_preauth", "sec_kerb_user_service")
PRIVILEGES: dict[str, tuple[str, ...]] = {
    "sec_priv_debug": ("sedebugprivilege",),
    "sec_priv_tcb": ("setcbprivilege",),
    "sec_priv_backup": ("sebackupprivilege", "serestoreprivilege"),
    "sec_priv_take_ownership": ("setakeownershipprivilege",),
    "sec_priv_load_driver": ("seloaddriverprivilege",),
    "sec_priv_impersonate": ("seimpersonateprivilege", "seassignprimarytokenprivilege"),
    "sec_priv_create_token": ("secreatetokenprivilege",),
    "sec_priv_security": ("sesecurityprivilege",),
}
_PRIVILEGES = Needles(*PRIVILEGES.values())
ENABLED_NAMES = ("sec_priv_debug_enabled",)  # 4703: a process turned SeDebugPrivilege on (mimikatz privilege::debug)
ACCOUNT_NAMES = ("sec_account_created", "sec_password_reset", "sec_member_added", "sec_privileged_group",
                 "sec_group_enum_by_tool", "sec_sid_history")
NAMES: tuple[str, ...] = (FAMILY_NAMES + tuple(LOGON_TYPES) + AUTH_NAMES + FAILURE_NAMES + KERBEROS_NAMES
                          + tuple(PRIVILEGES) + ENABLED_NAMES + ACCOUNT_NAMES)
INDICATORS: tuple[str, ...] = (
    "sec_logon_cleartext", "sec_logon_new_credentials", "sec_auth_ntlm_v1", "sec_auth_ntlm_no_key",
    "sec_auth_seclogo", *FAILURE_NAMES, *KERBEROS_NAMES, "sec_priv_create_token", *ENABLED_NAMES,
    *ACCOUNT_NAMES,
)

# NT status (logon, NTLM) and Kerberos result codes, lower-case hex without padding.
BAD_PASSWORD = frozenset({"0xc000006a", "0x18"})
UNKNOWN_USER = frozenset({"0xc0000064", "0x6"})
ACCOUNT_STATE = frozenset({"0xc0000234", "0xc0000072", "0xc0000193", "0xc0000071", "0xc000006f",
                           "0xc0000070", "0xc0000224", "0x12", "0x17"})
OK_STATUS = frozenset({"", "-", "0x0", "0"})
GENERIC_FAILURE = frozenset({"0xc000006d", "0xc000006e"})  # "logon failure": the SubStatus says why
BAD_NAME_OR_PASSWORD = "%%2313"  # FailureReason text id "Unknown user name or bad password"
AUTH_EVENTS = frozenset({4625, 4771, 4772, 4776, 4768, 4769, 4777})
KERBEROS_EVENTS = frozenset({4768, 4769, 4770})
LOGON_EVENTS = frozenset({4624, 4625})
GROUP_EVENTS = FAMILIES["sec_group_change"] | FAMILIES["sec_group_enum"]
ACCOUNT_EVENTS = GROUP_EVENTS | FAMILIES["sec_account_change"]
RC4, DES = frozenset({"0x17", "0x18"}), frozenset({"0x1", "0x3"})
# Builtin and domain groups whose membership is administrative (SID suffix or name).
PRIVILEGED_SIDS = ("s-1-5-32-544", "s-1-5-32-548", "s-1-5-32-549", "s-1-5-32-550", "s-1-5-32-551",
                   "s-1-5-32-555", "s-1-5-32-578")
PRIVILEGED_RIDS = ("-512", "-518", "-519", "-520", "-526", "-527")
PRIVILEGED_GROUPS = frozenset({"administrators", "domain admins", "enterprise admins", "schema admins",
                               "backup operators", "account operators", "server operators", "print operators",
                               "dnsadmins", "remote desktop users", "group policy creator owners", "key admins",
                               "enterprise key admins", "hyper-v administrators"})
# Processes that enumerate groups for a person or a script (as opposed to the OS's own services).
ENUM_TOOLS = ("net.exe", "net1.exe", "powershell.exe", "pwsh.exe", "cmd.exe", "wmic.exe", "whoami.exe",
              "rundll32.exe", "dsquery.exe", "adfind.exe")


LOGON_GATE = LOGON_EVENTS | {4634}
_PRIVILEGE_FIELDS = ("PrivilegeList", "EnabledPrivilegeList")


def keyed(b: EdrBatch, gate: frozenset[int], key: Callable[[EndpointEvent], str]) -> Texts | None:
    """One text per event: ``key(e)`` for events of the ``gate`` IDs, else ``""``; None when no
    event of the batch has one of them. Composite keys (fields joined by SEP) repeat as much as
    single fields do."""
    # Most events are of no gated ID: only those rows build their key.
    rows = b.codes.rows(gate)
    if not rows:
        return None
    evs = b.events
    return Texts.sparse(b.n, rows, [key(evs[i]) for i in rows])


def put_keyed(b: EdrBatch, group: Group) -> None:
    """A JOIN :class:`Group` of gated events (its ``row`` lower-cases the key: :func:`keyed_row`):
    ``row`` of each gated event's key, once per distinct key (zeros for the other events)."""
    assert group.gate is not None
    texts = keyed(b, group.gate, key_function(group.parts))
    if texts is not None:
        b.sheet.put_texts(group.first, group.width, texts, group.row)


@functools.lru_cache(maxsize=64)
def key_function(parts: tuple[tuple[str, str], ...]) -> Callable[[EndpointEvent], str]:
    """An event's key of a JOIN group's ``parts`` (fields "f", the event code "c", attributes as
    texts "a" or by str "s"), joined by SEP: the reference of the native pass's keys."""
    def read(kind: str, name: str) -> Callable[[EndpointEvent], str]:
        if kind == "f":
            return lambda e: e.fields.get(name) or ""
        if kind == "c":
            return lambda e: f"{e.event_code}"
        return (lambda e: str(getattr(e, name))) if kind == "s" else (lambda e: getattr(e, name) or "")
    readers = [read(kind, name) for kind, name in parts]
    return lambda e: SEP.join([r(e) for r in readers])


def fields(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple(("f", name) for name in names)


def _joined_lower(fields: list[Mapping[str, str]], *names: str) -> list[str]:
    """``names``' fields joined by SEP, lower-cased, of every event, read by column: most events carry none of
    ``names``, and their value is the same constant."""
    columns = [list(map(methodcaller("get", n), fields)) for n in names]
    empty = SEP.join("" for _ in names).lower()
    if not any(chain.from_iterable(columns)):  # C-level: most batches carry none of them
        return [empty] * len(fields)
    return [SEP.join(v or "" for v in row).lower() if any(row) else empty for row in zip(*columns, strict=True)]


@functools.lru_cache(maxsize=4096)
def _family(code: int) -> tuple[float, ...]:
    return tuple(float(code in m) for m in FAMILIES.values())


def security_columns(evs: Sequence[EndpointEvent]) -> dict[str, F64]:
    """Every column of :data:`NAMES` for the batch."""
    b = EdrBatch(evs, NAMES, "security_columns")
    put_security(b)
    return b.sheet.columns()


def put_security(b: EdrBatch) -> None:
    """Every column of :data:`NAMES`, into ``b.sheet``."""
    sheet = b.sheet
    b.codes.put(sheet, FAMILY_NAMES[0], len(FAMILY_NAMES), _family)
    logon_rows = b.codes.rows(LOGON_GATE)
    if logon_rows:  # else the columns stay 0
        distinct, inverse = factorize(b.numbers("logon_type", -1.0)[logon_rows].tolist())
        j = sheet.at[next(iter(LOGON_TYPES))]
        sheet.out[logon_rows, j:j + len(LOGON_TYPES)] = np.array(list(map(_logon_types, distinct)))[inverse]
    for group in GROUPS[2:5]:  # authentication, failures, Kerberos
        put_keyed(b, group)
    privileges = b.texts(_joined_lower(b.fields, *_PRIVILEGE_FIELDS)) if not b.keys.isdisjoint(_PRIVILEGE_FIELDS) \
        else None
    if privileges is not None and privileges.distinct != [SEP]:  # else no event names a privilege: the columns stay 0
        sheet.put_rows(next(iter(PRIVILEGES)), len(PRIVILEGES), None if privileges.identity else privileges.inverse,
                       list(map(_privilege_row, privileges.distinct)))
    for group in GROUPS[6:]:  # SeDebugPrivilege enabled, accounts and groups
        put_keyed(b, group)


def keyed_row(row: Callable[[str], tuple[float, ...]]) -> Callable[[str], tuple[float, ...]]:
    """A :func:`put_keyed` row: ``row`` of the lower-case key, cached (an event's fields recur
    across batches: a process-access key is ~500 characters of call trace, 4 in 10 of a
    realistic stream's new in a batch, 1 in 5 new in 10,000 events)."""
    return text_memo(row, lower=True)


def _privilege_row(lower: str) -> tuple[float, ...]:
    return tuple(float(c > 0) for c in _PRIVILEGES.counts([lower])[0])


def _logon_types(logon_type: float) -> tuple[float, ...]:
    """The LOGON_TYPES columns of an event of LOGON_GATE."""
    return tuple(float(logon_type in types) for types in LOGON_TYPES.values())


def _debug_enabled(value: str) -> tuple[float, ...]:
    return (float("sedebugprivilege" in value),)


def _auth(value: str) -> tuple[float, ...]:
    package, lm, key_length, process, logon_type = split_key(value, 5)
    ntlm = "ntlm" in package or "msv1_0" in package or "authentication_package_v1" in package
    return (float(ntlm), float("ntlm v1" in lm),
            float(ntlm and key_length.strip() == "0" and logon_type == "3"), float("seclogo" in process))


def _failure(value: str) -> tuple[float, ...]:
    parts = {c.strip() for c in value.split(SEP)} - OK_STATUS
    # FailureReason is a message id ("%%2313"); the status codes carry the rest.
    codes = {c for c in parts if not c.startswith("%%")}
    bad, unknown, state = codes & BAD_PASSWORD, codes & UNKNOWN_USER, codes & ACCOUNT_STATE
    other = codes - BAD_PASSWORD - UNKNOWN_USER - ACCOUNT_STATE - GENERIC_FAILURE
    return (float(bool(bad) or BAD_NAME_OR_PASSWORD in parts), float(bool(unknown)), float(bool(state)),
            float(bool(other)))


def hex_int(text: str) -> int:
    try:
        return int(text.strip(), 16) if text.strip().startswith("0x") else int(text.strip() or "0")
    except ValueError:
        return 0


def _kerberos(value: str) -> tuple[float, ...]:
    code, options_text, encryption, preauth, service = split_key(value, 5)
    options = hex_int(options_text)
    enc = encryption.strip()
    user_service = (code == "4769" and bool(service) and not service.endswith("$")
                    and service not in ("krbtgt", "kadmin"))
    return (float(enc in RC4), float(enc in DES), float(bool(options & 0x20000000)),
            float(options != 0 and not options & 0x00010000), float(bool(options & 0x00020000)),
            float(bool(options & 0x8)), float(code == "4768" and preauth.strip() == "0"), float(user_service))


def _account(value: str) -> tuple[float, ...]:
    code_text, sid, caller, sid_history, group = split_key(value, 5)
    code = int(code_text)
    in_group = code in GROUP_EVENTS
    privileged = in_group and (sid.startswith(PRIVILEGED_SIDS) or sid.endswith(PRIVILEGED_RIDS)
                               or group.rsplit("\\", 1)[-1] in PRIVILEGED_GROUPS)
    tool = code in FAMILIES["sec_group_enum"] and caller.rsplit("\\", 1)[-1] in ENUM_TOOLS
    history = code in (4765, 4766) or (code in FAMILIES["sec_account_change"] and sid_history not in ("", "-"))
    return (float(code in (4720, 4741)), float(code in (4723, 4724, 4794)), float(code in (4728, 4732, 4756)),
            float(privileged), float(tool), float(history))


# The rows put_keyed reads: of the lower-case key, cached.
_keyed_debug_enabled = keyed_row(_debug_enabled)
_keyed_auth = keyed_row(_auth)
_keyed_failure = keyed_row(_failure)
_keyed_kerberos = keyed_row(_kerberos)
_keyed_account = keyed_row(_account)
# The columns of put_security as the native pass runs them (EdrBatch's Plan); put_security is their
# reference (GROUPS[2:5] and [6:] it runs itself).
GROUPS: tuple[Group, ...] = (
    Group(FAMILY_NAMES[0], len(FAMILY_NAMES), _family, (("c", ""),), RAW),
    Group(next(iter(LOGON_TYPES)), len(LOGON_TYPES), _logon_types, (("n", "logon_type"),), RAW, LOGON_GATE),
    Group(AUTH_NAMES[0], len(AUTH_NAMES), _keyed_auth, (*fields("AuthenticationPackageName", "LmPackageName",
          "KeyLength", "LogonProcessName"), ("s", "logon_type")), JOIN, LOGON_EVENTS),
    Group(FAILURE_NAMES[0], len(FAILURE_NAMES), _keyed_failure, fields("Status", "SubStatus", "FailureReason"),
          JOIN, AUTH_EVENTS),
    Group(KERBEROS_NAMES[0], len(KERBEROS_NAMES), _keyed_kerberos, (("c", ""), *fields(
          "TicketOptions", "TicketEncryptionType", "PreAuthType", "ServiceName")), JOIN, KERBEROS_EVENTS),
    Group(next(iter(PRIVILEGES)), len(PRIVILEGES), text_memo(_privilege_row, lower=True), fields(*_PRIVILEGE_FIELDS),
          JOIN),
    Group(ENABLED_NAMES[0], 1, _keyed_debug_enabled, fields("EnabledPrivilegeList"), JOIN, frozenset({4703})),
    Group(ACCOUNT_NAMES[0], len(ACCOUNT_NAMES), _keyed_account, (("c", ""), *fields(
          "TargetSid", "CallerProcessName", "SidHistory"), ("a", "user")), JOIN, ACCOUNT_EVENTS),
)
