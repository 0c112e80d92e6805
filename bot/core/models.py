"""Domain records shared by the engine, the store and the renderers (plain frozen dataclasses)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

# A version reaches deploy argv, URLs, git refs and file names: it starts with a letter or digit (never read as an
# option or a hidden file), has no `/` and no `..` (no path, no range), and fits 128 characters. `\Z`, not `$`:
# `$` also matches before a trailing newline.
VERSION_RE = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\Z")
VERSION_RULE = "1-128 of A-Z a-z 0-9 . _ + -, starting with a letter or digit, without `..`"


def version_problem(value: str) -> str | None:
    """Why ``value`` is not a version (a sentence naming it), or None when it is one."""
    if VERSION_RE.match(value):
        return None
    return f"{value[:80]!r} is not a version: use {VERSION_RULE}"


class ReleaseState(StrEnum):
    """Where a release is in its life; the terminal states never change again except by rollback marking."""

    AWAITING_APPROVAL = "awaiting_approval"
    QUEUED = "queued"
    DEPLOYING = "deploying"
    VERIFYING = "verifying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"

    @property
    def running(self) -> bool:
        """True while the release holds its environment's lock."""
        return self in {ReleaseState.QUEUED, ReleaseState.DEPLOYING, ReleaseState.VERIFYING}

    @property
    def terminal(self) -> bool:
        """True once the release will make no further progress by itself."""
        return self in {
            ReleaseState.SUCCEEDED,
            ReleaseState.FAILED,
            ReleaseState.ROLLED_BACK,
            ReleaseState.INTERRUPTED,
            ReleaseState.CANCELLED,
        }


class ReleaseKind(StrEnum):
    DEPLOY = "deploy"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    RETRY = "retry"


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class ApprovalKind(StrEnum):
    RELEASE = "release"  # approvals.required > 0
    FORCE = "force"  # break-glass outside a window or past the checklist
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class Candidate:
    service: str
    version: str
    commit: str
    committed_at: datetime | None
    components: dict[str, str]
    created_at: datetime


@dataclass(frozen=True)
class Release:
    id: int
    service: str
    env: str
    version: str
    kind: ReleaseKind
    state: ReleaseState
    requested_by: str
    requested_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    channel: str | None = None
    thread_ts: str | None = None
    source_env: str | None = None
    previous_version: str | None = None
    rollback_of: int | None = None
    rollback_target: str | None = None
    rollback_method: str | None = None
    healthy: bool | None = None
    change_failure: bool = False
    verdict: str | None = None
    force_reason: str | None = None
    forced_by: str | None = None
    output_tail: str | None = None
    error: str | None = None
    weight: int | None = None
    colour: str | None = None
    checklist: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] | None = None
    held_step: str | None = None  # the verify step a rollout is on hold at, until on-call decides


@dataclass(frozen=True)
class EnvState:
    service: str
    env: str
    version: str
    release_id: int
    since: datetime
    by: str


@dataclass(frozen=True)
class Lock:
    """A held lock: ``kind`` is ``release`` (a running release) or ``manual`` (``/release lock``)."""

    service: str
    env: str
    kind: str
    holder: str
    reason: str
    acquired_at: datetime
    release_id: int | None = None


@dataclass(frozen=True)
class Approval:
    id: int
    kind: ApprovalKind
    service: str
    env: str
    requester: str
    required: int
    eligible_groups: list[str]
    state: ApprovalState
    created_at: datetime
    expires_at: datetime
    subject: dict[str, Any]
    approvers: list[str] = field(default_factory=list)
    decided_at: datetime | None = None
    decided_by: str | None = None
    reason: str | None = None
    channel: str | None = None
    message_ts: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    request_id: str | None


class RunRole(StrEnum):
    """What a deploy step's success means for its release."""

    FINAL = "final"  # the last step of a rollout or a rollback: its success completes the release
    PARTIAL = "partial"  # a canary or blue/green step with more to come
    UNDO = "undo"  # returning traffic to the previous release after a failed step or check


class RunOutcome(StrEnum):
    """How a deploy step ended, as far as the bot can prove it."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"  # it ended, but nothing recorded how: people must check the environment
    NOT_STARTED = "not_started"  # its record could not be written, so it never started


@dataclass(frozen=True)
class DeployRun:
    """One provider step of a release, recorded before it starts (see bot/engine/fences.py)."""

    id: int
    release_id: int
    step: str  # the step's label, as the thread shows it
    action: str  # deploy | shift | rollback
    role: RunRole
    provider: str  # command | http | github_actions
    started_at: datetime
    deadline_at: datetime  # the provider's timeout from the start: a deploy still running then is stopped
    weight: int | None = None
    colour: str | None = None
    output_path: str | None = None
    pgid: int | None = None  # a command's process group
    proc_start: int | None = None  # its leader's start time (/proc/<pid>/stat field 22, clock ticks since boot)
    boot_id: str | None = None
    remote_id: str | None = None  # a remote run's id or status URL
    adopted_at: datetime | None = None  # a restarted bot found it running and follows it
    ended_at: datetime | None = None
    outcome: RunOutcome | None = None
    exit_status: int | None = None
    error: str | None = None
