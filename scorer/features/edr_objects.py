"""EDR block of feature set v3: what an event touched, for the objects attackers go after.

- service installs (System 7045 ``ImagePath``, Security 4697 ``ServiceFileName``): a shell or
  script host as the service binary, a user-writable, UNC or named-pipe path (PsExec-style
  and Impacket smbexec/psexec services), a kernel driver;
- scheduled tasks (4698/4700/4702 ``TaskContent``): the action's command, hidden, as SYSTEM,
  on logon or boot;
- directory objects (4662 ``Properties``: the DCSync replication rights, control access;
  5136 writes of attributes abused for delegation, shadow credentials, Kerberoasting; 4661
  SAM enumeration);
- shares (5140/5145 ``ShareName``, ``RelativeTargetName``): administrative shares, the RPC
  pipes of remote execution and enumeration, executables and task files written to a share;
- handles (4656/4663 ``ObjectName``) to LSASS, the SAM/SECURITY hives and ntds.dit, and
  Sysmon process access (10) by rights bits and ``CallTrace`` (unknown code, dump helpers).

Each field is read once per distinct (event ID, value) of the batch. ``INDICATORS`` are the
columns that can only make an event more suspicious.
"""

from __future__ import annotations

from collections.abc import Sequence

from scorer.events.structs import EndpointEvent
from scorer.features.base import F64
from scorer.features.edr_batch import JOIN, SEP, EdrBatch, Group, split_key
from scorer.features.edr_security import fields, hex_int, keyed_row, put_keyed

SERVICE_NAMES = ("svc_shell", "svc_user_dir", "svc_remote_path", "svc_outside_system", "svc_driver")
TASK_NAMES = ("task_shell", "task_user_dir", "task_hidden", "task_system", "task_encoded", "task_logon_boot")
DS_NAMES = ("ds_replication", "ds_control_access", "ds_sensitive_attribute", "ds_sam_enumeration")
SHARE_NAMES = ("share_admin", "share_ipc", "share_rpc_pipe", "share_executable", "share_write", "share_task_file")
HANDLE_NAMES = ("handle_lsass", "handle_sam_hive", "handle_ntds")
ACCESS_NAMES = ("acc_vm_read", "acc_vm_write", "acc_create_thread", "acc_lsass_read", "acc_calltrace_unknown",
                "acc_calltrace_dump")
NAMES: tuple[str, ...] = SERVICE_NAMES + TASK_NAMES + DS_NAMES + SHARE_NAMES + HANDLE_NAMES + ACCESS_NAMES
INDICATORS: tuple[str, ...] = tuple(n for n in NAMES if n not in ("acc_vm_read", "ds_sam_enumeration"))

SERVICE_EVENTS, TASK_EVENTS = frozenset({7045, 4697}), frozenset({4698, 4700, 4702})
DS_EVENTS, SHARE_EVENTS = frozenset({4662, 4661, 5136, 5137, 5141}), frozenset({5140, 5145})
HANDLE_EVENTS = frozenset({4656, 4663})
SHELLS = ("cmd.exe", "cmd ", "%comspec%", "powershell", "pwsh", "rundll32", "mshta", "regsvr32", "wscript",
          "cscript", "/c ", "echo ")
USER_WRITABLE = ("\\temp\\", "\\tmp\\", "\\users\\", "\\appdata\\", "\\programdata\\", "\\perflogs\\",
                 "\\downloads\\", "$recycle.bin", "\\windows\\tasks\\")
SYSTEM_PATHS = ("c:\\windows\\system32\\", "%systemroot%\\system32\\", "\\systemroot\\system32\\",
                "c:\\windows\\syswow64\\", "c:\\program files", "\"c:\\program files", "\"c:\\windows\\system32\\",
                "system32\\")
ENCODED = ("-enc", "-encodedcommand", "-ec ", "frombase64string", "-e jab", "-e sqb")
# Extended rights of directory replication (DCSync): Get-Changes, Get-Changes-All, In-Filtered-Set.
REPLICATION = ("1131f6aa-9c07-11d1-f79f-00c04fc2dcd2", "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2",
               "89e95b76-444d-4c62-991a-0facbeda640c")
# Attributes written for delegation abuse, shadow credentials, targeted Kerberoasting, logon
# scripts and GPO hijack, SID history and AdminSDHolder; read as their lDAPDisplayName (5136)
# or schema GUID (4662 Properties: servicePrincipalName, msDS-KeyCredentialLink, thumbnailPhoto
# of the AD FS DKM container).
SENSITIVE_ATTRIBUTES = ("serviceprincipalname", "msds-allowedtoactonbehalfofotheridentity",
                        "msds-keycredentiallink", "ntsecuritydescriptor", "scriptpath", "gpcfilesyspath",
                        "msds-allowedtodelegateto", "sidhistory", "admincount", "gplink", "useraccountcontrol",
                        "f3a64788-5306-11d1-a9c5-0000f80367c1", "5b47d60f-6090-40b2-9f37-2a4de88f3063",
                        "8d3bca50-1d7e-11d0-a081-00aa006c33ed")
CONTROL_ACCESS = ("%%7688",)
RPC_PIPES = frozenset({"svcctl", "atsvc", "samr", "lsarpc", "lsass", "winreg", "srvsvc", "wkssvc", "netlogon",
                       "spoolss", "eventlog", "epmapper", "ntsvcs", "efsrpc", "drsuapi", "browser", "netdfs"})
EXECUTABLE_EXT = (".exe", ".dll", ".bat", ".cmd", ".ps1", ".vbs", ".hta", ".js", ".scr", ".sys", ".msi")
SHARE_WRITE = ("%%4417", "%%4418", "%%1539", "%%1540")  # WriteData, AppendData, WRITE_DAC, WRITE_OWNER
PROCESS_VM_READ, PROCESS_VM_WRITE, PROCESS_VM_OPERATION, PROCESS_CREATE_THREAD = 0x10, 0x20, 0x8, 0x2
DUMP_HELPERS = ("dbghelp.dll", "dbgcore.dll", "comsvcs.dll")


def object_columns(evs: Sequence[EndpointEvent]) -> dict[str, F64]:
    """Every column of :data:`NAMES` for the batch."""
    b = EdrBatch(evs, NAMES, "object_columns")
    put_objects(b)
    return b.sheet.columns()


def put_objects(b: EdrBatch) -> None:
    """Every column of :data:`NAMES`, into ``b.sheet`` (the reference of :data:`GROUPS`)."""
    for group in GROUPS:
        put_keyed(b, group)


def _any(text: str, needles: Sequence[str]) -> float:
    return float(any(n in text for n in needles))


def _service(value: str) -> tuple[float, ...]:
    image_path, file_name, service_type = split_key(value, 3)
    path = (image_path or file_name).strip()
    # The binary: up to the closing quote, else the first word; a bare name runs from PATH.
    binary = path[1:].split("\"", 1)[0] if path.startswith("\"") else (path.split() or [""])[0]
    outside = "\\" in binary and not path.lstrip("\"").startswith(SYSTEM_PATHS)
    driver = hex_int(service_type) in (0x1, 0x2) or "driver" in service_type or path.endswith(".sys")
    return (_any(path, SHELLS), _any(path, USER_WRITABLE),
            float(path.startswith("\\\\") or "\\\\.\\pipe\\" in path or "admin$" in path), float(outside),
            float(driver))


def _task(value: str) -> tuple[float, ...]:
    content = value.replace(SEP, " ")
    command = " ".join(_between(content, "<command>", "</command>") + _between(content, "<arguments>", "</arguments>"))
    return (_any(command, SHELLS), _any(command, USER_WRITABLE), float("<hidden>true</hidden>" in content),
            _any(content, ("<userid>s-1-5-18</userid>", "<userid>system</userid>", "<userid>nt authority\\system")),
            _any(content, ENCODED), _any(content, ("<logontrigger", "<boottrigger")))


def _between(text: str, start: str, end: str) -> list[str]:
    out, pos = [], 0
    while (i := text.find(start, pos)) >= 0:
        j = text.find(end, i)
        out.append(text[i + len(start): j if j >= 0 else len(text)])
        pos = i + len(start)
    return out


def _directory(value: str) -> tuple[float, ...]:
    code, properties, mask, attribute, object_type = split_key(value, 5)
    control = code == "4662" and (_any(properties, CONTROL_ACCESS) or bool(hex_int(mask) & 0x100))
    return (float(code == "4662" and _any(properties, REPLICATION) > 0), float(control),
            _any(properties + " " + attribute, SENSITIVE_ATTRIBUTES),
            float(code == "4661" and object_type.startswith("sam_")))


def _share(value: str) -> tuple[float, ...]:
    share_name, target, access = split_key(value, 3)
    name = share_name.rsplit("\\", 1)[-1]
    pipe = target.strip("\\").rsplit("\\", 1)[-1]
    return (float(name.endswith("$") and name != "ipc$"), float(name == "ipc$"),
            float(name == "ipc$" and pipe in RPC_PIPES), float(target.endswith(EXECUTABLE_EXT)),
            float(name != "ipc$" and _any(access, SHARE_WRITE) > 0),
            float("\\tasks\\" in target or target.startswith("tasks\\")))


def _handle(value: str) -> tuple[float, ...]:
    return (float(value.endswith("\\lsass.exe")),
            _any(value, ("\\registry\\machine\\sam", "\\registry\\machine\\security", "\\config\\sam",
                         "\\config\\security")),
            float(value.endswith("ntds.dit")))


def _access(value: str) -> tuple[float, ...]:
    target, granted, trace = split_key(value, 3)
    rights = hex_int(granted)
    read = bool(rights & PROCESS_VM_READ)
    return (float(read), float(bool(rights & (PROCESS_VM_WRITE | PROCESS_VM_OPERATION))),
            float(bool(rights & PROCESS_CREATE_THREAD)), float(read and target.endswith("\\lsass.exe")),
            float("unknown(" in trace or "|unknown" in trace), _any(trace, DUMP_HELPERS))


# The rows put_keyed reads: of the lower-case key, cached.
_keyed_service = keyed_row(_service)
_keyed_task = keyed_row(_task)
_keyed_directory = keyed_row(_directory)
_keyed_share = keyed_row(_share)
_keyed_handle = keyed_row(_handle)
_keyed_access = keyed_row(_access)
# Each block's key: its event IDs' fields (and code) joined by SEP.
GROUPS: tuple[Group, ...] = (
    Group(SERVICE_NAMES[0], len(SERVICE_NAMES), _keyed_service, fields("ImagePath", "ServiceFileName", "ServiceType"),
          JOIN, SERVICE_EVENTS),
    Group(TASK_NAMES[0], len(TASK_NAMES), _keyed_task, fields("TaskContent", "TaskContentNew"), JOIN, TASK_EVENTS),
    Group(DS_NAMES[0], len(DS_NAMES), _keyed_directory, (("c", ""), *fields(
          "Properties", "AccessMask", "AttributeLDAPDisplayName", "ObjectType")), JOIN, DS_EVENTS),
    Group(SHARE_NAMES[0], len(SHARE_NAMES), _keyed_share, fields("ShareName", "RelativeTargetName", "AccessList"),
          JOIN, SHARE_EVENTS),
    Group(HANDLE_NAMES[0], len(HANDLE_NAMES), _keyed_handle, (("a", "target_filename"),), JOIN, HANDLE_EVENTS),
    Group(ACCESS_NAMES[0], len(ACCESS_NAMES), _keyed_access, fields("TargetImage", "GrantedAccess", "CallTrace"),
          JOIN, frozenset({10})),
)
