"""What a deploy provider is given and returns; the ports themselves (`DeployProvider`, `RunRecord`) are in
bot.ports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DeployContext:
    """What a provider needs to act on one service in one environment."""

    service: str
    version: str
    environment: str
    release_id: int
    weight: int = 100  # share of traffic for the new version (canary), 100 for a full release
    colour: str | None = None  # blue/green: the colour being deployed to or switched to
    previous_version: str | None = None


@dataclass(frozen=True)
class StepResult:
    """The outcome of one provider action. ``output_tail`` keeps the last lines for the release record."""

    ok: bool
    output_tail: str
    error: str | None = None  # one line for people: "exit status 3", "timed out after 15m"
    exit_status: int | None = None  # a command's exit status, when it exited by itself


@dataclass(frozen=True)
class RunIdentity:
    """What names a running command step, so that a restarted bot can tell whether it still runs.

    ``pgid`` is the step's process group (its leader's pid); ``proc_start`` the leader's start time
    (/proc/<pid>/stat field 22) and ``boot_id`` the kernel's boot: a pid used again later, or after a
    reboot, is not mistaken for the step.
    """

    pgid: int | None = None
    proc_start: int | None = None
    boot_id: str | None = None


@dataclass(frozen=True)
class LeftRun:
    """A step a previous process of the bot started and did not see end, as recorded before it started."""

    action: str  # deploy | shift | rollback
    identity: RunIdentity
    output: Path | None  # a command step's output file (its exit status is written next to it)
    remote_id: str | None  # a remote step's run id or status URL, when its service gave one
    remaining: float  # seconds left of the provider's timeout, counted from the step's start


@dataclass(frozen=True)
class Unproven:
    """A left step has ended, but nothing proves how (no exit status was written, no remote run to ask)."""

    reason: str
    output_tail: str = ""
