"""A deploy step's process group, named so that a restarted bot can find it again (Linux /proc).

A pid alone does not name a process across a restart: by then the step may have ended and its pid gone to
another process. Its leader's start time (/proc/<pid>/stat field 22, clock ticks since boot) and the boot id
do: a different process under the same pid has a different start time, and after a reboot nothing of the step
runs. A group's id is not given to a new process while the group has members, so a group whose leader has
exited but whose members still run is still the step's. Without /proc (not Linux) a step has no such name: a
restarted bot cannot tell it runs, and reports its outcome as unknown.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from bot.providers.base import RunIdentity

_PROC = Path("/proc")
_DEAD = frozenset({"Z", "X"})  # a zombie (exited, not yet reaped) or dead process runs nothing


@dataclass(frozen=True)
class ProcStat:
    state: str
    pgid: int
    start: int


def boot_id() -> str | None:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except FileNotFoundError:
        return None


def proc_stat(pid: int) -> ProcStat | None:
    """A process's state, process group and start time; None when there is no such process."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')': split after the last ')'.
    fields = text.rsplit(")", 1)[1].split()
    return ProcStat(state=fields[0], pgid=int(fields[2]), start=int(fields[19]))


def identify(pid: int) -> RunIdentity:
    """The identity of the group ``pid`` leads (it was started with a new session)."""
    found = proc_stat(pid)
    return RunIdentity(pgid=pid, proc_start=found.start if found else None, boot_id=boot_id())


def group_running(identity: RunIdentity) -> bool:
    """Whether the step named by ``identity`` still has a live process."""
    pgid = identity.pgid
    if pgid is None or identity.boot_id is None or identity.boot_id != boot_id():
        return False
    leader = proc_stat(pgid)
    if leader is not None and leader.start != identity.proc_start:
        return False  # the pid names another process now, so the step's group has no members left
    if leader is not None and leader.state not in _DEAD:
        return True
    return any(member.pgid == pgid and member.state not in _DEAD for member in _all_processes())


def _all_processes() -> list[ProcStat]:
    found = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat is not None:
                found.append(stat)
    return found


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
