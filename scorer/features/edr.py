"""EDR features: what a detection engineer looks at, in a form that transfers across hosts.

Event codes are grouped into behaviours (process creation, process access, registry
write...) so Sysmon and Security-log views of the same act look alike. Process images
become classes (LOLBin, script host, Office, user-writable path) plus a small hashed
bucket of the lower-case basename; command lines and script blocks become counts of
tradecraft tokens (encoded commands, download cradles, credential tools...). Host names,
user names, GUIDs and exact paths are deliberately absent: they identify a lab, not an
attack.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import is_, methodcaller

from scorer.events.structs import Event, EventKind
from scorer.features.base import F32, basename, column, group_names, log1p, stable_hash
from scorer.features.edr_batch import JOIN, RAW, TUPLE, WORDS, EdrBatch, Group, PathRows, Plan
from scorer.features.texts import Found, Needles, first_texts, found_rows, text_memo

# Behaviour -> Windows event codes (Sysmon and Security / PowerShell / WMI equivalents).
BEHAVIOURS: dict[str, frozenset[int]] = {
    "proc_create": frozenset({1, 4688}),
    "net_conn": frozenset({3, 5156, 5158}),
    "image_load": frozenset({7}),
    "remote_thread": frozenset({8}),
    "proc_access": frozenset({10, 4656}),
    "file_create": frozenset({11, 15, 23, 26, 4663}),
    "registry": frozenset({12, 13, 14, 4657}),
    "pipe": frozenset({17, 18}),
    "dns": frozenset({22}),
    "wmi": frozenset({19, 20, 21, 5857, 5858, 5860, 5861}),
    "script": frozenset({4103, 4104, 800, 400, 403, 600}),
    "logon": frozenset({4624, 4625, 4648, 4672, 4768, 4769, 4776}),
    "service_task": frozenset({7045, 4697, 4698, 4699, 4700, 4701, 4702, 106, 140, 141, 142}),
    "account": frozenset({4720, 4722, 4724, 4728, 4732, 4738, 4756, 4781}),
    "share": frozenset({5140, 5145}),
    "defender": frozenset({1116, 1117, 1119, 5001, 5007}),
}
LOLBINS = frozenset({
    "powershell.exe", "pwsh.exe", "cmd.exe", "wscript.exe", "cscript.exe", "mshta.exe",
    "rundll32.exe", "regsvr32.exe", "certutil.exe", "bitsadmin.exe", "wmic.exe", "msiexec.exe",
    "schtasks.exe", "reg.exe", "net.exe", "net1.exe", "sc.exe", "vssadmin.exe", "wevtutil.exe",
    "installutil.exe", "msbuild.exe", "cmstp.exe", "forfiles.exe", "regasm.exe", "regsvcs.exe",
    "odbcconf.exe", "msxsl.exe", "bash.exe", "control.exe", "hh.exe", "pcalua.exe",
    "mavinject.exe", "esentutl.exe", "expand.exe", "extrac32.exe", "findstr.exe", "ftp.exe",
    "netsh.exe", "nltest.exe", "dsquery.exe", "whoami.exe", "bcdedit.exe", "wuauclt.exe",
    "curl.exe", "tar.exe", "ntdsutil.exe", "diskshadow.exe", "comsvcs.dll", "procdump.exe",
    "psexec.exe", "psexesvc.exe", "at.exe", "taskkill.exe", "vbc.exe", "csc.exe",
})
SCRIPT_HOSTS = frozenset({"powershell.exe", "pwsh.exe", "wscript.exe", "cscript.exe",
                          "mshta.exe", "cmd.exe", "powershell_ise.exe"})
OFFICE = frozenset({"winword.exe", "excel.exe", "powerpnt.exe", "outlook.exe", "msaccess.exe",
                    "mspub.exe", "visio.exe", "onenote.exe"})
SERVICE_PARENTS = frozenset({"services.exe", "svchost.exe", "wmiprvse.exe", "taskeng.exe",
                             "taskhostw.exe", "winlogon.exe", "explorer.exe"})
USER_WRITABLE = ("\\temp\\", "\\tmp\\", "\\users\\public\\", "\\appdata\\", "\\programdata\\",
                 "\\downloads\\", "\\desktop\\", "\\perflogs\\", "\\recycle", "$recycle.bin")
SYSTEM_DIRS = ("c:\\windows\\system32\\", "c:\\windows\\syswow64\\", "c:\\program files")
RISKY_EXT = (".ps1", ".vbs", ".vbe", ".js", ".jse", ".hta", ".bat", ".cmd", ".scr", ".lnk",
             ".sct", ".dll", ".exe", ".iso", ".zip", ".wsf", ".cpl", ".xll")
TOKENS: dict[str, tuple[str, ...]] = {
    "encoded": ("-enc", "-encodedcommand", "-ec ", "frombase64string", "base64", "-e jab",
                "-e sqb", "[convert]::"),
    "download": ("downloadstring", "downloadfile", "downloaddata", "invoke-webrequest", "iwr ",
                 "wget ", "curl ", "/transfer", "-urlcache", "http://", "https://", "net.webclient",
                 "bitstransfer", "start-bitstransfer"),
    "evasion": ("-w hidden", "-windowstyle hidden", "bypass", "-nop", "-noni", "-noprofile",
                "set-mppreference", "disablerealtimemonitoring", "-exclusion", "amsi",
                "wevtutil cl", "clear-eventlog", "vssadmin delete", "shadowcopy", "bcdedit",
                "auditpol", "minint", "fltmc", "advfirewall", "firewall add", "firewall set",
                "portproxy", "sc config", "stop-service", "net stop", "set-service"),
    "execution": ("iex", "invoke-expression", "invoke-", "new-object", "reflection.assembly",
                  "start-process", "createthread", "virtualalloc", "shellcode", "rundll32",
                  "regsvr32", "/i:http", "scrobj", "javascript:", "vbscript:", "wmic ", "-exec"),
    "credential": ("mimikatz", "sekurlsa", "lsass", "procdump", "comsvcs", "minidump", "ntds",
                   "\\sam", "hklm\\sam", "hklm\\security", "kerberoast", "dcsync", "lsadump",
                   "logonpasswords", "vaultcmd", "credential", "reg save", "save hklm",
                   "ntdsutil", "dumpert", ".dmp", "sekurlsa::", "get-credential"),
    "recon": ("whoami", "net user", "net group", "net localgroup", "nltest", "systeminfo",
              "ipconfig", "tasklist", "quser", "query user", "get-domain", "get-net", "adfind",
              "dsquery", "arp -a", "netstat", "get-wmiobject", "get-ciminstance", "powerview"),
    "persistence": ("schtasks", "/create", "reg add", "\\currentversion\\run", "sc create",
                    "new-service", "set-itemproperty", "startup", "userinit", "winlogon",
                    "new-scheduledtask", "register-scheduledtask", "wmic process call create"),
    "lateral": ("psexec", "\\\\admin$", "\\\\c$", "winrm", "invoke-command", "enter-pssession",
                "wmic /node", "-computername", "dcom", "mmc20", "remote"),
}
REG_KEYS = ("\\currentversion\\run", "\\services\\", "\\policies\\", "windows defender",
            "\\control\\lsa", "image file execution options", "inprocserver32", "\\winlogon",
            "security providers", "\\safeboot", "\\minint", "\\eventlog", "silentprocessexit",
            "\\environment", "appinit_dlls", "\\shell\\open\\command")
SUSPICIOUS_DLLS = ("dbghelp.dll", "dbgcore.dll", "samlib.dll", "vaultcli.dll", "clr.dll",
                   "system.management.automation", "comsvcs.dll", "wmiutils.dll", "taskschd.dll")
_B64 = re.compile(r"[a-z0-9+/=]{40,}")
_COMMAND_FIELDS = ("ScriptBlockText", "Payload", "HostApplication", "Details")
HASH_BUCKETS = 16

BEHAVIOUR_NAMES = group_names("ev_", [*BEHAVIOURS, "other"])
CHANNEL_NAMES = group_names("ch_", ["sysmon", "security", "powershell", "other"])
IMAGE_HASH = group_names("image_hash_", map(str, range(HASH_BUCKETS)))
PARENT_HASH = group_names("parent_hash_", map(str, range(HASH_BUCKETS)))
TOKEN_NAMES = group_names("cmd_", TOKENS)
PROCESS_NAMES = (
    "image_lolbin", "image_script_host", "image_office", "image_user_dir", "image_system_dir",
    "image_not_exe", "parent_lolbin", "parent_script_host", "parent_office", "parent_service",
    "parent_user_dir", "image_renamed",
)
OTHER_NAMES = (
    "log_cmd_len", "cmd_token_total", "log_b64_len", "log_parent_cmd_len",
    "target_user_dir", "target_risky_ext", "target_startup", "registry_key_risky",
    "loaded_suspicious_dll", "loaded_user_dir", "unsigned", "integrity_high", "user_system",
    "logon_network", "logon_remote_interactive", "access_lsass", "access_rights_full",
    "dst_port_web", "dst_port_other",
)
HIGH_LEVELS = frozenset({"high", "system"})
SYSTEM_USERS = frozenset({"system", "nt authority\\system"})
_WEB_PORTS, _KNOWN_PORTS = frozenset({80, 443, 8080}), frozenset({80, 443, 8080, 53})
# Texts looked for in each distinct value (scorer.features.texts.Needles).
_TOKENS = Needles(*TOKENS.values())
_IMAGE_DIRS, _PARENT_DIRS = Needles(USER_WRITABLE, SYSTEM_DIRS), Needles(USER_WRITABLE)
_TARGET_DIRS = Needles(USER_WRITABLE, ("\\start menu\\programs\\startup",))
_REG_KEYS, _LOADED = Needles(REG_KEYS), Needles(SUSPICIOUS_DLLS, USER_WRITABLE)
# Process-access rights that read or write another process's memory (credential dumping,
# injection): PROCESS_ALL_ACCESS variants and VM_READ|QUERY_INFORMATION combinations.
FULL_ACCESS = frozenset({"0x1fffff", "0x1f0fff", "0x1f1fff", "0x1f3fff", "0x1010", "0x1410",
                         "0x1438", "0x143a", "0x40", "0x1418"})


class EdrFeatures:
    """Features of :class:`EndpointEvent` batches (stateless)."""

    kind = EventKind.EDR
    reads_views = True  # EndpointRow events too: their fields a mapping over the record's bytes
    names: tuple[str, ...] = (BEHAVIOUR_NAMES + CHANNEL_NAMES + PROCESS_NAMES + TOKEN_NAMES
                              + OTHER_NAMES + IMAGE_HASH + PARENT_HASH)

    def __init__(self) -> None:
        self.plan = Plan(GROUPS, self.names)

    def transform(self, events: Sequence[Event]) -> F32:
        sheet = self.plan.sheet(events)
        if sheet is None:  # the Python blocks: no native module, or a batch it refused
            b = EdrBatch(events, self.names, "EdrFeatures.transform")
            self.put(b)
            sheet = b.sheet
        return sheet.matrix()

    def put(self, b: EdrBatch) -> tuple[list[str], list[str]]:
        """Every column of :attr:`names`, into ``b.sheet`` (the reference of :data:`GROUPS`); returns
        each event's lower-case image and parent basename (feature set v3 reads them too)."""
        sheet, evs, fields = b.sheet, b.events, b.fields
        b.codes.put(sheet, BEHAVIOUR_NAMES[0], len(BEHAVIOUR_NAMES), _behaviour)
        # Channels, images and command lines repeat heavily: text work runs once per
        # distinct value (Texts), then is placed at every row holding it.
        chan = b.texts([c + " " + p for c, p in zip(column(evs, "channel"), column(evs, "provider"), strict=True)])
        sheet.put_texts(CHANNEL_NAMES[0], len(CHANNEL_NAMES), chan, _channel, blank_zero=False)
        # Sysmon process-access events name the actor SourceImage, not Image.
        actors = first_texts(column(evs, "image"), fields, "SourceImage")
        images = b.put_paths(b.texts(actors), "image_lolbin", 6, _IMAGE_ROWS, IMAGE_HASH[0])
        parents = b.put_paths(b.texts(b.attribute("parent_image")), "parent_lolbin", 5, _PARENT_ROWS, PARENT_HASH[0])
        original = b.field("OriginalFileName")
        renamed = [i for i, o in enumerate(original) if o]
        if renamed:
            sheet.out[renamed, sheet.at["image_renamed"]] = [_renamed((original[i], images[i]))[0] for i in renamed]
        sheet.put_texts(TOKEN_NAMES[0], len(TOKEN_NAMES) + 3, b.texts(_command_texts(b)), _command_row)
        if "signed" not in b.absent:
            unsigned = list(map(is_, column(evs, "signed"), repeat(False)))  # C-level: no frame per event
            if any(unsigned):
                sheet.put("unsigned", unsigned)
        for group in GROUPS[6:]:
            if group.parts[0][0] in "afn":  # one attribute, field or number: EdrBatch's reference
                b.put_group(group)
        return images, parents


@functools.lru_cache(maxsize=4096)
def _behaviour(code: int) -> tuple[float, ...]:
    row = tuple(float(code in members) for members in BEHAVIOURS.values())
    return (*row, float(not any(row)))


def _channel(value: str) -> tuple[float, ...]:
    text = value.lower()
    sysmon, sec, ps = float("sysmon" in text), float("security" in text), float("powershell" in text)
    return sysmon, sec * (1 - sysmon), ps * (1 - sysmon), float(sysmon + sec + ps == 0)


def _image(base: str, found: Found) -> tuple[float, ...]:
    user_dir, system_dir = found
    return (float(base in LOLBINS), float(base in SCRIPT_HOSTS), float(base in OFFICE), float(user_dir > 0),
            float(system_dir > 0), float(bool(base) and not base.endswith(".exe")))


def _parent(base: str, found: Found) -> tuple[float, ...]:
    return (float(base in LOLBINS), float(base in SCRIPT_HOSTS), float(base in OFFICE), float(base in SERVICE_PARENTS),
            float(found[0] > 0))


def path_rows(needles: Needles, flags: Callable[[str, Found], tuple[float, ...]]) -> Callable[[str], PathRows]:
    """Of a path: its lower-case basename, its flags (of the basename and the ``needles`` found
    in the lower-case path) and its hashed basename's one-hot row (:func:`hashed_onehot`'s); cached
    by path (a host's images recur in every batch)."""
    def rows(lower: str, found: Found) -> PathRows:
        base, onehot = basename(lower), [0.0] * HASH_BUCKETS
        if base:
            onehot[stable_hash(base) % HASH_BUCKETS] = 1.0
        return base, flags(base, found), tuple(onehot)
    return found_rows(needles, rows)


def _renamed(key: tuple[str, str]) -> tuple[float]:
    """A known binary running under another name: (OriginalFileName from the PE header, the
    image's basename)."""
    original, base = key[0].lower(), key[1]
    return (float(bool(base) and original.replace(".mui", "") != base and original in LOLBINS),)


def _command_values(text: str) -> tuple[float, ...]:
    """Of a command text: the token counts, then log_cmd_len, cmd_token_total, log_b64_len (in
    names order)."""
    lower = text.lower()
    counts = _TOKENS.counts([lower])[0]
    log_len, log_b64 = log1p([len(lower), max(map(len, _B64.findall(lower)), default=0)]).tolist()
    return (*counts, log_len, float(sum(counts)), log_b64)


def _log_length(text: str) -> tuple[float]:
    return (log1p([len(text)]).tolist()[0],)


def _command_texts(b: EdrBatch) -> list[str]:
    """Every event's command line and script texts (``_COMMAND_FIELDS``) joined by spaces, not
    lower-cased yet (once per distinct text, later), read by column (most events carry none of it)."""
    columns = [] if "command_line" in b.absent else [column(b.events, "command_line")]
    columns += [list(map(methodcaller("get", name), b.fields)) for name in _COMMAND_FIELDS if name in b.keys]
    columns = [c for c in columns if any(c)]  # C-level: most carry nothing in a batch
    if len(columns) <= 1:
        return [v or "" for v in columns[0]] if columns else b.blank()
    return [" ".join(filter(None, row)) if any(row) else "" for row in zip(*columns, strict=True)]


def _logon(logon_type: float) -> tuple[float, ...]:
    """logon_network, logon_remote_interactive."""
    return float(logon_type == 3), float(logon_type == 10)


def _port(port: float) -> tuple[float, ...]:
    """dst_port_web: a finite port whose integer part is a web port (as str(int(port)) in the set
    read it); dst_port_other: a port that is none of the known ones."""
    return float(math.isfinite(port) and math.trunc(port) in _WEB_PORTS), float(port >= 0 and port not in _KNOWN_PORTS)


def _target(path: str, found: Found) -> tuple[float, ...]:
    """target_user_dir, target_risky_ext, target_startup."""
    return float(found[0] > 0), float(path.endswith(RISKY_EXT)), float(found[1] > 0)


def _any_found(_: str, found: Found) -> tuple[float, ...]:
    """1 per group of needles of which the value contains one."""
    return tuple(float(c > 0) for c in found)


_IMAGE_ROWS, _PARENT_ROWS = path_rows(_IMAGE_DIRS, _image), path_rows(_PARENT_DIRS, _parent)
_TARGET_ROWS, _REG_ROWS = found_rows(_TARGET_DIRS, _target), found_rows(_REG_KEYS, _any_found)
_LOADED_ROWS = found_rows(_LOADED, _any_found)
_command_row = text_memo(_command_values)
_high_level = text_memo(lambda v: (float(v in HIGH_LEVELS),), lower=True)
_system_user = text_memo(lambda v: (float(v in SYSTEM_USERS),), lower=True)
_lsass = text_memo(lambda v: (float("lsass.exe" in v),), lower=True)
_full_access = text_memo(lambda v: (float(v in FULL_ACCESS),), lower=True)
# The groups above as the native pass runs them (EdrBatch's Plan); put() is their reference.
GROUPS: tuple[Group, ...] = (
    Group(BEHAVIOUR_NAMES[0], len(BEHAVIOUR_NAMES), _behaviour, (("c", ""),), RAW),
    Group(CHANNEL_NAMES[0], len(CHANNEL_NAMES), _channel, (("r", "channel"), ("r", "provider")), JOIN, sep=" "),
    Group("image_lolbin", 6, _IMAGE_ROWS, (("a", "image"), ("f", "SourceImage")),
          path=(IMAGE_HASH[0], HASH_BUCKETS, "image")),
    Group("parent_lolbin", 5, _PARENT_ROWS, (("a", "parent_image"),), path=(PARENT_HASH[0], HASH_BUCKETS, "parent")),
    Group("image_renamed", 1, _renamed, (("f", "OriginalFileName"), ("p", "image")), TUPLE, require=0),
    Group(TOKEN_NAMES[0], len(TOKEN_NAMES) + 3, _command_row,
          (("a", "command_line"), *(("f", name) for name in _COMMAND_FIELDS)), WORDS, sep=" "),
    Group("log_parent_cmd_len", 1, _log_length, (("a", "parent_command_line"),)),
    Group("target_user_dir", 3, _TARGET_ROWS, (("a", "target_filename"),)),
    Group("registry_key_risky", 1, _REG_ROWS, (("a", "target_object"),)),
    Group("loaded_suspicious_dll", 2, _LOADED_ROWS, (("a", "image_loaded"),)),
    Group("unsigned", 1, lambda false: (float(false),), (("b", "signed"),), RAW),
    Group("integrity_high", 1, _high_level, (("a", "integrity_level"),)),
    Group("user_system", 1, _system_user, (("a", "user"),)),
    Group("logon_network", 2, _logon, (("n", "logon_type"),), RAW),
    Group("access_lsass", 1, _lsass, (("f", "TargetImage"),)),
    Group("access_rights_full", 1, _full_access, (("f", "GrantedAccess"),)),
    Group("dst_port_web", 2, _port, (("n", "dst_port"),), RAW),
)
