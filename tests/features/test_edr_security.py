"""Security-channel block (v3): each flag on the event that defines it, nowhere else, and
per-distinct-value evaluation equal to evaluating each event alone."""

from __future__ import annotations

import numpy as np
import pytest

from scorer.events.structs import EndpointEvent
from scorer.features.edr_security import INDICATORS, NAMES, security_columns
from tests.support.columns import assert_batch_equals_each_alone, flags_set


def ev(code: int, user: str | None = None, logon_type: int | None = None, **fields: str) -> EndpointEvent:
    return EndpointEvent(ts=1.0, host="h", channel="Security", event_code=code, user=user,
                         logon_type=logon_type, fields=fields)


CASES: list[tuple[EndpointEvent, set[str]]] = [
    (ev(4624, logon_type=9, AuthenticationPackageName="Negotiate", LogonProcessName="seclogo"),
     {"sec_logon", "sec_logon_new_credentials", "sec_auth_seclogo"}),
    (ev(4624, logon_type=3, AuthenticationPackageName="NTLM", LmPackageName="NTLM V1", KeyLength="0"),
     {"sec_logon", "sec_auth_ntlm", "sec_auth_ntlm_v1", "sec_auth_ntlm_no_key"}),
    (ev(4625, logon_type=3, Status="0xc000006d", SubStatus="0xC000006A", FailureReason="%%2313"),
     {"sec_logon_failed", "sec_fail_bad_password"}),
    (ev(4625, logon_type=2, Status="0xc000006d", SubStatus="0xc0000064"),
     {"sec_logon_failed", "sec_logon_interactive", "sec_fail_unknown_user"}),
    (ev(4776, Status="0xc0000234"), {"sec_ntlm_validation", "sec_fail_account_state"}),
    (ev(4776, Status="0xc0000133"), {"sec_ntlm_validation", "sec_fail_other"}),
    (ev(4689, Status="0x1"), set()),  # a process exit status is not a logon failure
    (ev(4769, TicketOptions="0x40810000", TicketEncryptionType="0x17", ServiceName="sqlsvc", Status="0x0"),
     {"sec_kerberos_service", "sec_kerb_rc4", "sec_kerb_user_service"}),
    (ev(4769, TicketOptions="0x40810000", TicketEncryptionType="0x12", ServiceName="DC01$"),
     {"sec_kerberos_service"}),
    (ev(4768, TicketOptions="0x40800010", TicketEncryptionType="0x17", PreAuthType="0", ServiceName="krbtgt"),
     {"sec_kerberos_tgt", "sec_kerb_rc4", "sec_kerb_no_canonicalize", "sec_kerb_no_preauth"}),
    (ev(4769, TicketOptions="0x60830008", TicketEncryptionType="0x1", ServiceName="krbtgt"),
     {"sec_kerberos_service", "sec_kerb_des", "sec_kerb_forwarded", "sec_kerb_s4u", "sec_kerb_u2u"}),
    (ev(4672, PrivilegeList="SeDebugPrivilege\r\n\t\t\tSeTcbPrivilege"),
     {"sec_special_logon", "sec_priv_debug", "sec_priv_tcb"}),
    (ev(4703, EnabledPrivilegeList="SeDebugPrivilege"),
     {"sec_token_rights", "sec_priv_debug", "sec_priv_debug_enabled"}),
    (ev(4720, user="backdoor"), {"sec_account_change", "sec_account_created"}),
    (ev(4724, user="bob"), {"sec_account_change", "sec_password_reset"}),
    (ev(4732, user="Administrators", TargetSid="S-1-5-32-544"),
     {"sec_group_change", "sec_member_added", "sec_privileged_group"}),
    (ev(4728, user="CORP\\Domain Admins", TargetSid="S-1-5-21-1-2-3-512"),
     {"sec_group_change", "sec_member_added", "sec_privileged_group"}),
    (ev(4799, user="Administrators", TargetSid="S-1-5-32-544", CallerProcessName="C:\\Windows\\System32\\net1.exe"),
     {"sec_group_enum", "sec_privileged_group", "sec_group_enum_by_tool"}),
    (ev(4799, user="Users", TargetSid="S-1-5-32-545", CallerProcessName="C:\\Windows\\System32\\svchost.exe"),
     {"sec_group_enum"}),
    (ev(4738, user="bob", SidHistory="S-1-5-21-9-9-9-500"), {"sec_account_change", "sec_sid_history"}),
    (ev(7045), {"sec_service_install"}),
    (ev(4698), {"sec_task_change"}),
    (ev(4662), {"sec_ds_access"}),
    (ev(5145), {"sec_share_file"}),
    (ev(1102), {"sec_log_cleared"}),
    (ev(5379), {"sec_credential_read"}),
    (EndpointEvent(ts=1.0, host="h", event_code=1, image="C:\\x.exe"), set()),
]


@pytest.mark.parametrize(("event", "expected"), CASES)
def test_flags(event: EndpointEvent, expected: set[str]) -> None:
    assert flags_set(security_columns, NAMES, event) == expected


def test_batch_equals_each_event_alone() -> None:
    # Repeats, so values are factorised.
    assert_batch_equals_each_alone(security_columns, NAMES, [e for e, _ in CASES] * 3)


def test_indicators_are_columns_and_empty_batch() -> None:
    assert set(INDICATORS) <= set(NAMES) and len(set(NAMES)) == len(NAMES)
    cols = security_columns([])
    assert all(c.shape == (0,) for c in cols.values())
    assert all(np.isfinite(c).all() for c in security_columns([e for e, _ in CASES]).values())
