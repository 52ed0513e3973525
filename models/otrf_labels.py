"""Weak per-event attack labels inside OTRF captures, from the capture metadata alone.

OTRF labels a capture (one simulated technique amid background activity), not its events.
For the Empire captures the metadata (``_metadata/SDWIN-*.yaml``, ``simulation.adversary_view``)
shows the C2 console: the agent table (agent name, machine, user, process, PID) and the
agents the operator drove (``(Empire: NAME) >`` prompts). An event is labelled *attack* when
the process that acts in it is such an agent's process on its machine, or descends from it
(process-create lineage by ProcessGuid / PID, followed forward in time). Everything else
stays unlabelled background. The labels never look at a model score.

What acts in an event: PowerShell channels -> ``ExecutionProcessID`` (the host process of
the script); Sysmon 10 / Security 4690 (process access / handle duplication) -> the
*source* process; otherwise the event's ``ProcessId`` or Sysmon ``ProcessGuid``. Process
creation (Sysmon 1, Security 4688) extends the lineage. Limits: agents named only in the
narrative, work an agent does on another host (lateral movement lands on the target
without a local parent), and PID reuse within a capture are not modelled.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import yaml

from scorer.events.structs import EndpointEvent, Event

# Empire's `agents` table: name, language, internal IP, machine, user, process, PID, ...
_AGENT_ROW = re.compile(r"^\s*([A-Z0-9]{8})\s+\w{2}\s+[\d.]+\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)\s", re.M)
_PROMPT = re.compile(r"\(Empire: ([A-Z0-9]{8})\)")


@dataclass(frozen=True)
class Agent:
    name: str
    machine: str  # short host name, upper case
    user: str
    process: str
    pid: int


def agents(adversary_view: str) -> list[Agent]:
    """The C2 agents the operator drove (prompted), or every listed agent if none was."""
    table = {m[0]: Agent(m[0], m[1].upper(), m[2].lstrip("*"), m[3], int(m[4]))
             for m in _AGENT_ROW.findall(adversary_view or "")}
    driven = [table[n] for n in dict.fromkeys(_PROMPT.findall(adversary_view or "")) if n in table]
    return driven or list(table.values())


def _views(metadata_dir: Path) -> dict[str, str]:
    """Capture name (zip stem) -> the adversary view of its metadata."""
    out: dict[str, str] = {}
    for path in sorted(metadata_dir.glob("SDWIN-*.yaml")):
        meta = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        view = str((meta.get("simulation") or {}).get("adversary_view") or "")
        for f in meta.get("files") or []:
            if view and f.get("type") == "Host" and f.get("link"):
                out[str(f["link"]).rsplit("/", 1)[-1].split(".")[0]] = view
    return out


@cache
def agents_by_capture(metadata_dir: Path) -> dict[str, tuple[Agent, ...]]:
    """Capture name (zip stem) -> its agents, for every metadata file that lists some."""
    return {stem: tuple(found) for stem, view in _views(metadata_dir).items() if (found := agents(view))}


@cache
def commands_by_capture(metadata_dir: Path) -> dict[str, tuple[Command, ...]]:
    """Capture name -> the programs its adversary view runs, for captures without agents."""
    return {stem: tuple(found) for stem, view in _views(metadata_dir).items()
            if not agents(view) and (found := commands(view))}


@dataclass(frozen=True)
class Command:
    program: str  # executable name without path or .exe, lower case
    args: frozenset[str]  # distinctive argument tokens (lower case, >= 4 characters)


# Shells and hosts the operator types into: too common to name an attack by themselves.
_HOSTS = {"cmd", "powershell", "pwsh", "conhost", "rundll32", "python", "explorer"}
_TOKEN = re.compile(r"[a-z0-9_.:\\/$%-]{4,}")


def _program(token: str) -> str:
    name = token.strip("\"'&(").replace("/", "\\").rsplit("\\", 1)[-1].lower()
    return name[:-4] if name.endswith(".exe") else name


def commands(view: str) -> list[Command]:
    """Programs started in the view: the first word of a console line (after a ``C:\\...>`` /
    ``PS ...>`` prompt or a C2 ``/shellcommand:"``) that names an executable, with the
    line's distinctive argument tokens. A program only counts with arguments or an
    ``.exe`` name, so prose lines ("RDP to victim") name nothing."""
    out: list[Command] = []
    for raw in view.splitlines():
        line = re.sub(r"^.*?/shellcommand:\"", "", raw.strip(), flags=re.I)
        line = re.sub(r"^(PS [^>]*>|[A-Za-z]:\\[^>]*>|PS\s*>)\s*", "", line)
        words = line.split()
        if not words:
            continue
        first = words[0].strip("\"'&")
        program = _program(first)
        if not re.fullmatch(r"[a-z0-9_.-]{2,}", program) or program in _HOSTS:
            continue
        args = frozenset(t.strip("\"'") for t in _TOKEN.findall(" ".join(words[1:]).lower()))
        if first.lower().endswith(".exe") or (args and words[0][0].islower() and "=" not in words[0]
                                              and not words[0].startswith(("$", "[", "-"))
                                              and "-" not in program):
            out.append(Command(program, args))
    return out


def _names(e: EndpointEvent, found: Sequence[Command]) -> bool:
    """Whether this process-creation event starts a program the view runs, with its arguments."""
    program = _program(e.image or "")
    line = (e.command_line or "").lower()
    for c in found:
        if c.program != program:
            continue
        if not c.args or sum(a in line for a in c.args) >= min(2, len(c.args)):
            return True
    return False


def _short(host: str) -> str:
    return host.split(".", 1)[0].upper()


def _int(value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value, 0) if isinstance(value, str) else int(value)
    except ValueError:
        return None


def _actor(e: EndpointEvent) -> tuple[int | None, str | None]:
    """(PID, ProcessGuid) of the process that acts in this event."""
    if "powershell" in e.channel.lower():
        return _int(e.fields.get("ExecutionProcessID")), None
    if (e.event_code == 10 and "sysmon" in e.channel.lower()) or e.event_code == 4690:
        return _int(e.fields.get("SourceProcessId")), e.fields.get("SourceProcessGUID")
    return e.process_id, e.fields.get("ProcessGuid")


class _Lives:
    """PIDs of one host's attack processes with the times they lived (PIDs are reused)."""

    def __init__(self) -> None:
        self.spans: dict[int, list[list[float]]] = {}

    def add(self, pid: int, start: float) -> None:
        spans = self.spans.setdefault(pid, [])
        if not any(s <= start <= e for s, e in spans):
            spans.append([start, float("inf")])

    def has(self, pid: int | None, ts: float) -> bool:
        return pid is not None and any(s <= ts <= e for s, e in self.spans.get(pid, ()))

    def end(self, pid: int, ts: float) -> None:
        for span in self.spans.get(pid, ()):
            if span[0] <= ts <= span[1]:
                span[1] = ts


def attack_events(events: Sequence[Event], found: Sequence[Agent],
                  named: Sequence[Command] = ()) -> npt.NDArray[np.bool_]:
    """Which events (same order) the agents' processes, the processes the view's commands
    start, or their descendants perform, each PID only while that process lives."""
    out = np.zeros(len(events), bool)
    lives: dict[str, _Lives] = {}
    guids: dict[str, set[str]] = {}
    for a in found:
        lives.setdefault(a.machine, _Lives()).add(a.pid, float("-inf"))
    for e in events:  # seeds: process creations that the view's commands name
        if (named and isinstance(e, EndpointEvent) and e.event_code in (1, 4688)
                and _names(e, named)):
            pid = e.process_id if e.event_code == 1 else _int(e.fields.get("NewProcessId"))
            if pid is not None:
                lives.setdefault(_short(e.host), _Lives()).add(pid, e.ts)
            if e.fields.get("ProcessGuid"):
                guids.setdefault(_short(e.host), set()).add(e.fields["ProcessGuid"])
    if not lives and not guids:
        return out
    order = np.argsort(np.fromiter((e.ts for e in events), np.float64, len(events)), kind="stable")
    for _ in range(2):  # a second pass picks up GUIDs first tied to an agent PID later on
        for i in order.tolist():
            e = events[i]
            if not isinstance(e, EndpointEvent):
                continue
            host = _short(e.host)
            if host not in lives and host not in guids:
                continue
            mine, theirs = lives.setdefault(host, _Lives()), guids.setdefault(host, set())
            pid, guid = _actor(e)
            sysmon = "sysmon" in e.channel.lower()
            if e.event_code == 1 and sysmon:  # process create: actor is the new process
                parent = (e.fields.get("ParentProcessGuid") in theirs
                          or mine.has(_int(e.fields.get("ParentProcessId")), e.ts))
                if parent:
                    if pid is not None:
                        mine.add(pid, e.ts)
                    if guid:
                        theirs.add(guid)
            elif e.event_code == 4688 and not sysmon:  # ProcessId = creator, NewProcessId = child
                parent = mine.has(pid, e.ts)
                child = _int(e.fields.get("NewProcessId"))
                if parent and child is not None:
                    mine.add(child, e.ts)
            else:
                parent = False
            # A known GUID decides; a PID only speaks for an event without a known other GUID.
            acts = parent or (guid is not None and guid in theirs) or mine.has(pid, e.ts)
            if acts:
                out[i] = True
                if guid and mine.has(pid, e.ts):
                    theirs.add(guid)
                exited = (e.event_code == 5 and sysmon) or (e.event_code == 4689 and not sysmon)
                if exited and pid is not None:
                    mine.end(pid, e.ts)
    return out


def capture_labels(path: Path, metadata_dir: Path) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.str_]]:
    """Attack flag and event type (channel|code) of one capture's events in dataset row order
    (event time, stable: :func:`scorer.features.capture_matrix`'s order)."""
    from scorer.captures import LabeledEvent, iter_capture

    events = [i.event for i in iter_capture(path) if isinstance(i, LabeledEvent)]
    order = np.argsort(np.fromiter((e.ts for e in events), np.float64, len(events)), kind="stable")
    flags = attack_events(events, agents_by_capture(metadata_dir).get(path.stem, ()),
                          commands_by_capture(metadata_dir).get(path.stem, ()))
    kinds = np.array([f"{getattr(e, 'channel', '').lower()}|{getattr(e, 'event_code', '')}" for e in events],
                     dtype=np.str_)
    return flags[order], kinds[order]


def row_labels(files: Sequence[str], capture: npt.NDArray[np.str_], source: npt.NDArray[np.str_],
               metadata_dir: Path) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.str_]]:
    """Weak attack flag and event type per dataset row (rows of one capture are contiguous
    and in event-time order; captures filed under two tactics share a name and are joined in
    file order)."""
    flags = np.zeros(len(capture), bool)
    kinds = np.full(len(capture), "", dtype=object)
    by_stem: dict[str, list[Path]] = {}
    for f in sorted(files):
        if "otrf" in f:
            by_stem.setdefault(Path(f).stem, []).append(Path(f))
    found = {**agents_by_capture(metadata_dir), **commands_by_capture(metadata_dir)}
    for stem, paths in by_stem.items():
        rows = np.flatnonzero((capture == stem) & (source == "otrf"))
        if rows.size == 0 or stem not in found:
            continue
        parts = [capture_labels(p, metadata_dir) for p in paths]
        f_all = np.concatenate([p[0] for p in parts])
        k_all = np.concatenate([p[1] for p in parts])
        if f_all.size != rows.size:
            raise ValueError(f"{stem}: {f_all.size} events read, {rows.size} dataset rows")
        flags[rows], kinds[rows] = f_all, k_all
    return flags, kinds.astype(np.str_)
