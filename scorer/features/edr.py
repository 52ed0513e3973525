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

import re
from collections.abc import Sequence
from itertools import repeat

import numpy as np

from scorer.events.structs import EndpointEvent, Event, EventKind
from scorer.features.base import (
    F32,
    F64,
    basename,
    column,
    flag,
    group_names,
    hashed_onehot,
    log1p,
    numbers,
    only,
    put_block,
    stack,
)
from scorer.features.texts import Texts, factorize, first_texts

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
# Process-access rights that read or write another process's memory (credential dumping,
# injection): PROCESS_ALL_ACCESS variants and VM_READ|QUERY_INFORMATION combinations.
FULL_ACCESS = frozenset({"0x1fffff", "0x1f0fff", "0x1f1fff", "0x1f3fff", "0x1010", "0x1410",
                         "0x1438", "0x143a", "0x40", "0x1418"})


class EdrFeatures:
    """Features of :class:`EndpointEvent` batches (stateless)."""

    kind = EventKind.EDR
    names: tuple[str, ...] = (BEHAVIOUR_NAMES + CHANNEL_NAMES + PROCESS_NAMES + TOKEN_NAMES
                              + OTHER_NAMES + IMAGE_HASH + PARENT_HASH)

    def transform(self, events: Sequence[Event]) -> F32:
        return stack(self.names, self.columns(events), len(events))

    def columns(self, events: Sequence[Event]) -> dict[str, F64]:
        """Every column of :attr:`names`, by name (what :meth:`transform` stacks)."""
        return self.columns_and_bases(events)[0]

    def columns_and_bases(self, events: Sequence[Event]) -> tuple[dict[str, F64], Texts, Texts]:
        """:meth:`columns`, and the lower-case image and parent basenames they were computed
        from (feature set v3 reads them too)."""
        only(events, (EndpointEvent,), "EdrFeatures.transform")
        evs: Sequence[EndpointEvent] = events  # type: ignore[assignment]  # checked just above
        fields = column(evs, "fields")
        cols: dict[str, F64] = {}
        # Behaviour one-hots for the few distinct event codes of the batch, then gathered.
        # (A dict, not np.unique: codes are Python ints of any size.)
        codes, inverse = factorize(column(evs, "event_code"))
        table = np.array([[c in members for members in BEHAVIOURS.values()] for c in codes],
                         dtype=np.float64).reshape(len(codes), len(BEHAVIOURS))
        block = table[inverse]
        put_block(cols, BEHAVIOUR_NAMES[:-1], block)
        cols["ev_other"] = (block.sum(axis=1) == 0).astype(np.float64)
        # Channels, images and command lines repeat heavily: text work runs once per
        # distinct value (Texts), then is gathered back to rows.
        chan = Texts([c + " " + p for c, p in zip(column(evs, "channel"), column(evs, "provider"), strict=True)]
                     ).map(str.lower)
        sysmon, sec = chan.contains_any(("sysmon",)), chan.contains_any(("security",))
        ps = chan.contains_any(("powershell",))
        cols.update(ch_sysmon=sysmon, ch_security=sec * (1 - sysmon),
                    ch_powershell=ps * (1 - sysmon),
                    ch_other=((sysmon + sec + ps) == 0).astype(np.float64))
        # Sysmon process-access events name the actor SourceImage, not Image.
        image = Texts(first_texts(column(evs, "image"), fields, "SourceImage")).map(str.lower)
        parent = Texts(_or_empty(evs, "parent_image")).map(str.lower)
        img_base, par_base = image.map(basename), parent.map(basename)
        cols.update(_process(image, parent, img_base, par_base, fields))
        text = Texts(_command_texts(evs, fields))
        for name, needles in TOKENS.items():
            cols[f"cmd_{name}"] = text.count_any(needles)
        cols["cmd_token_total"] = np.sum([cols[f"cmd_{k}"] for k in TOKENS], axis=0)
        cols["log_cmd_len"] = log1p(text.number(len))
        cols["log_b64_len"] = log1p(text.number(lambda t: max((len(m) for m in _B64.findall(t)), default=0)))
        cols["log_parent_cmd_len"] = log1p(list(map(len, _or_empty(evs, "parent_command_line"))))
        cols.update(_targets(evs, fields))
        put_block(cols, IMAGE_HASH, img_base.block(lambda d: hashed_onehot(d, HASH_BUCKETS)))
        put_block(cols, PARENT_HASH, par_base.block(lambda d: hashed_onehot(d, HASH_BUCKETS)))
        return cols, img_base, par_base


def _process(image: Texts, parent: Texts, img_base: Texts, par_base: Texts,
             fields: list[dict[str, str]]) -> dict[str, F64]:
    original = Texts(_field(fields, "OriginalFileName")).map(str.lower)
    return {
        "image_lolbin": img_base.isin(LOLBINS),
        "image_script_host": img_base.isin(SCRIPT_HOSTS),
        "image_office": img_base.isin(OFFICE),
        "image_user_dir": image.contains_any(USER_WRITABLE),
        "image_system_dir": image.contains_any(SYSTEM_DIRS),
        "image_not_exe": img_base.flag(lambda b: bool(b) and not b.endswith(".exe")),
        "parent_lolbin": par_base.isin(LOLBINS),
        "parent_script_host": par_base.isin(SCRIPT_HOSTS),
        "parent_office": par_base.isin(OFFICE),
        "parent_service": par_base.isin(SERVICE_PARENTS),
        "parent_user_dir": parent.contains_any(USER_WRITABLE),
        "image_renamed": _renamed(original, img_base),
    }


def _renamed(original: Texts, img_base: Texts) -> F64:
    """A known binary running under another name (OriginalFileName from the PE header),
    computed once per distinct (original name, image basename) pair."""
    width = max(len(img_base.distinct), 1)
    pairs, inverse = np.unique(original.inverse * width + img_base.inverse, return_inverse=True)
    flags = np.zeros(len(pairs))
    for k, code in enumerate(pairs.tolist()):
        o, b = original.distinct[code // width], img_base.distinct[code % width]
        flags[k] = bool(o) and bool(b) and o.replace(".mui", "") != b and o in LOLBINS
    out: F64 = flags[inverse.reshape(-1)]
    return out


def _command_text(e: EndpointEvent) -> str:
    parts = (e.command_line, e.fields.get("ScriptBlockText"), e.fields.get("Payload"),
             e.fields.get("HostApplication"), e.fields.get("Details"))
    return " ".join(p for p in parts if p).lower()


def _command_texts(evs: Sequence[EndpointEvent], fields: list[dict[str, str]]) -> list[str]:
    """:func:`_command_text` of every event, read by column (most events carry none of it)."""
    parts = zip(column(evs, "command_line"), *(map(dict.get, fields, repeat(name)) for name in _COMMAND_FIELDS),
                strict=True)
    return [" ".join(filter(None, row)).lower() if any(row) else "" for row in parts]


def _or_empty(evs: Sequence[EndpointEvent], attr: str) -> list[str]:
    return first_texts(column(evs, attr))


def _field(fields: list[dict[str, str]], name: str) -> list[str]:
    return first_texts(None, fields, name)


def _targets(evs: Sequence[EndpointEvent], fields: list[dict[str, str]]) -> dict[str, F64]:
    n = len(evs)
    target = Texts(_or_empty(evs, "target_filename")).map(str.lower)
    regkey = Texts(_or_empty(evs, "target_object")).map(str.lower)
    loaded = Texts(_or_empty(evs, "image_loaded")).map(str.lower)
    access = Texts(_field(fields, "TargetImage")).map(str.lower)
    user = Texts(_or_empty(evs, "user")).map(str.lower)
    level = Texts(_or_empty(evs, "integrity_level")).map(str.lower)
    granted = Texts(_field(fields, "GrantedAccess")).map(str.lower)
    logon = numbers(evs, "logon_type", -1.0)
    port = numbers(evs, "dst_port", -1.0)
    return {
        "target_user_dir": target.contains_any(USER_WRITABLE),
        "target_risky_ext": target.flag(lambda t: t.endswith(RISKY_EXT)),
        "target_startup": target.contains_any(("\\start menu\\programs\\startup",)),
        "registry_key_risky": regkey.contains_any(REG_KEYS),
        "loaded_suspicious_dll": loaded.contains_any(SUSPICIOUS_DLLS),
        "loaded_user_dir": loaded.contains_any(USER_WRITABLE),
        "unsigned": flag((s is False for s in column(evs, "signed")), n),
        "integrity_high": level.isin(frozenset({"high", "system"})),
        "user_system": user.isin({"system", "nt authority\\system"}),
        "logon_network": (logon == 3).astype(np.float64),
        "logon_remote_interactive": (logon == 10).astype(np.float64),
        "access_lsass": access.contains_any(("lsass.exe",)),
        "access_rights_full": granted.isin(FULL_ACCESS),
        # A finite port whose integer part is a web port (as str(int(port)) in the set read it).
        "dst_port_web": np.isin(np.trunc(port), (80, 443, 8080)).astype(np.float64),
        "dst_port_other": ((port >= 0) & ~np.isin(port, (80, 443, 8080, 53))).astype(np.float64),
    }
