"""Object block (v3): services, tasks, directory, shares, handles, process access."""

from __future__ import annotations

import pytest

from scorer.events.structs import EndpointEvent
from scorer.features.edr_objects import INDICATORS, NAMES, object_columns
from tests.support.columns import assert_batch_equals_each_alone, flags_set


def ev(code: int, target: str | None = None, **fields: str) -> EndpointEvent:
    return EndpointEvent(ts=1.0, host="h", event_code=code, target_filename=target, fields=fields)


TASK = ("<Task><Settings><Hidden>true</Hidden></Settings><Triggers><LogonTrigger/></Triggers>"
        "<Principals><Principal><UserId>S-1-5-18</UserId></Principal></Principals><Actions><Exec>"
        "<Command>powershell.exe</Command><Arguments>-nop -enc SQBFAFgA</Arguments></Exec></Actions></Task>")
CASES: list[tuple[EndpointEvent, set[str]]] = [
    (ev(7045, ImagePath="%COMSPEC% /C start /b C:\\Windows\\System32\\WindowsPowershell\\v1.0\\powershell -noP",
        ServiceType="user mode service"), {"svc_shell"}),
    (ev(7045, ImagePath="\\\\127.0.0.1\\ADMIN$\\a1b2c3.exe", ServiceType="user mode service"),
     {"svc_remote_path", "svc_outside_system"}),
    (ev(4697, ServiceFileName="rundll32.exe C:\\Users\\p\\AppData\\Local\\Temp\\x.dll,a", ServiceType="0x10"),
     {"svc_shell", "svc_user_dir"}),
    (ev(7045, ImagePath="C:\\ProgramData\\evil\\drv.sys", ServiceType="kernel mode driver"),
     {"svc_user_dir", "svc_outside_system", "svc_driver"}),
    (ev(7045, ImagePath="C:\\Windows\\system32\\svchost.exe -k netsvcs", ServiceType="0x20"), set()),
    (ev(4698, TaskContent=TASK), {"task_shell", "task_hidden", "task_system", "task_encoded", "task_logon_boot"}),
    (ev(4698, TaskContent="<Task><Actions><Exec><Command>C:\\Users\\Public\\a.exe</Command></Exec></Actions></Task>"),
     {"task_user_dir"}),
    (ev(4662, AccessMask="0x100", Properties="%%7688 {1131f6ad-9c07-11d1-f79f-00c04fc2dcd2} {19195a5b-...}"),
     {"ds_replication", "ds_control_access"}),
    (ev(4662, AccessMask="0x10", Properties="%%7684 {8d3bca50-1d7e-11d0-a081-00aa006c33ed}"),
     {"ds_sensitive_attribute"}),
    (ev(5136, AttributeLDAPDisplayName="msDS-KeyCredentialLink"), {"ds_sensitive_attribute"}),
    (ev(4661, ObjectType="SAM_DOMAIN"), {"ds_sam_enumeration"}),
    (ev(5140, ShareName="\\\\*\\ADMIN$", AccessList="%%4416"), {"share_admin"}),
    (ev(5145, ShareName="\\\\*\\IPC$", RelativeTargetName="svcctl", AccessList="%%4416 %%4417"),
     {"share_ipc", "share_rpc_pipe"}),
    (ev(5145, ShareName="\\\\*\\C$", RelativeTargetName="Windows\\Tasks\\pshell.xml", AccessList="%%4417"),
     {"share_admin", "share_write", "share_task_file"}),
    (ev(5145, ShareName="\\\\*\\ADMIN$", RelativeTargetName="b6a1458f396.exe", AccessList="%%1538"),
     {"share_admin", "share_executable"}),
    (ev(5145, ShareName="\\\\*\\SYSVOL", RelativeTargetName="corp\\Policies\\gpt.ini", AccessList="%%4416"), set()),
    (ev(4656, target="\\Device\\HarddiskVolume2\\Windows\\System32\\lsass.exe"), {"handle_lsass"}),
    (ev(4663, target="\\REGISTRY\\MACHINE\\SAM\\SAM\\Domains"), {"handle_sam_hive"}),
    (ev(4663, target="C:\\Windows\\NTDS\\ntds.dit"), {"handle_ntds"}),
    (ev(10, TargetImage="C:\\Windows\\system32\\lsass.exe", GrantedAccess="0x1410",
        CallTrace="C:\\Windows\\SYSTEM32\\ntdll.dll+9c534|C:\\Windows\\System32\\dbgcore.DLL+6b4e|UNKNOWN(00000000)"),
     {"acc_vm_read", "acc_lsass_read", "acc_calltrace_unknown", "acc_calltrace_dump"}),
    (ev(10, TargetImage="C:\\Windows\\notepad.exe", GrantedAccess="0x1F3FFF", CallTrace="ntdll.dll+1"),
     {"acc_vm_read", "acc_vm_write", "acc_create_thread"}),
    (ev(10, TargetImage="C:\\Windows\\system32\\lsass.exe", GrantedAccess="0x1400", CallTrace="ntdll.dll+1"), set()),
    (ev(4689, TaskContent=TASK, ImagePath="cmd.exe /c x"), set()),  # fields outside their event IDs
]


@pytest.mark.parametrize(("event", "expected"), CASES)
def test_flags(event: EndpointEvent, expected: set[str]) -> None:
    assert flags_set(object_columns, NAMES, event) == expected


def test_batch_equals_each_event_alone() -> None:
    assert_batch_equals_each_alone(object_columns, NAMES, [e for e, _ in CASES] * 2)
    assert set(INDICATORS) <= set(NAMES)
