"""Conversions between rows and domain records (timestamps are ISO-8601 UTC text)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.core.models import (
    Approval,
    ApprovalKind,
    ApprovalState,
    Candidate,
    DeployRun,
    EnvState,
    Release,
    ReleaseKind,
    ReleaseState,
    RunOutcome,
    RunRole,
)


def ts(value: datetime | None) -> str | None:
    """An aware datetime as sortable ISO text in UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def need_dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def candidate(row: dict[str, Any]) -> Candidate:
    return Candidate(
        service=row["service"],
        version=row["version"],
        commit=row["commit_sha"],
        committed_at=dt(row["committed_at"]),
        components=json.loads(row["components"]),
        created_at=need_dt(row["created_at"]),
    )


def release(row: dict[str, Any]) -> Release:
    return Release(
        id=row["id"],
        service=row["service"],
        env=row["env"],
        version=row["version"],
        kind=ReleaseKind(row["kind"]),
        state=ReleaseState(row["state"]),
        requested_by=row["requested_by"],
        requested_at=need_dt(row["requested_at"]),
        started_at=dt(row["started_at"]),
        finished_at=dt(row["finished_at"]),
        channel=row["channel"],
        thread_ts=row["thread_ts"],
        source_env=row["source_env"],
        previous_version=row["previous_version"],
        rollback_of=row["rollback_of"],
        rollback_target=row["rollback_target"],
        rollback_method=row["rollback_method"],
        healthy=None if row["healthy"] is None else bool(row["healthy"]),
        change_failure=bool(row["change_failure"]),
        verdict=row["verdict"],
        force_reason=row["force_reason"],
        forced_by=row["forced_by"],
        output_tail=row["output_tail"],
        error=row["error"],
        weight=row["weight"],
        colour=row["colour"],
        checklist=json.loads(row["checklist"]),
        notes=json.loads(row["notes"]) if row["notes"] else None,
        held_step=row["held_step"],
    )


def env_state(row: dict[str, Any]) -> EnvState:
    return EnvState(
        service=row["service"],
        env=row["env"],
        version=row["version"],
        release_id=row["release_id"],
        since=need_dt(row["since"]),
        by=row["by"],
    )


def approval(row: dict[str, Any], approvers: list[str]) -> Approval:
    return Approval(
        id=row["id"],
        kind=ApprovalKind(row["kind"]),
        service=row["service"],
        env=row["env"],
        requester=row["requester"],
        required=row["required"],
        eligible_groups=json.loads(row["eligible_groups"]),
        state=ApprovalState(row["state"]),
        created_at=need_dt(row["created_at"]),
        expires_at=need_dt(row["expires_at"]),
        subject=json.loads(row["subject"]),
        approvers=approvers,
        decided_at=dt(row["decided_at"]),
        decided_by=row["decided_by"],
        reason=row["reason"],
        channel=row["channel"],
        message_ts=row["message_ts"],
    )


def deploy_run(row: dict[str, Any]) -> DeployRun:
    return DeployRun(
        id=row["id"],
        release_id=row["release_id"],
        step=row["step"],
        action=row["action"],
        role=RunRole(row["role"]),
        provider=row["provider"],
        started_at=need_dt(row["started_at"]),
        deadline_at=need_dt(row["deadline_at"]),
        weight=row["weight"],
        colour=row["colour"],
        output_path=row["output_path"],
        pgid=row["pgid"],
        proc_start=row["proc_start"],
        boot_id=row["boot_id"],
        remote_id=row["remote_id"],
        adopted_at=dt(row["adopted_at"]),
        ended_at=dt(row["ended_at"]),
        outcome=RunOutcome(row["outcome"]) if row["outcome"] else None,
        exit_status=row["exit_status"],
        error=row["error"],
    )
