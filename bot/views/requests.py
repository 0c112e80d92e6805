"""A release request in words: why it was refused, what break-glass is asked to carry, and the answer. Pure.

Versions come from whoever typed the command or registered the candidate, so they are escaped here; service
and environment names are the configured ones the command was checked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.checklist import ChecklistResult
from bot.core.models import Release
from bot.core.windows import WindowDecision
from bot.views.checklist import checklist_lines
from bot.views.mrkdwn import escape
from bot.views.render import Message, info, when
from bot.views.windows import closed_reason, window_mrkdwn

__all__ = [
    "NOT_RETRYABLE",
    "RETRY_TAKEN",
    "already_runs",
    "awaiting_approval",
    "break_glass_details",
    "first_stage",
    "needs_break_glass",
    "not_in_pipeline",
    "not_passed_previous",
    "nothing_to_promote",
    "outside_window_reason",
    "promote_backwards",
    "started",
    "unknown_candidate",
]

# Retry under an interrupted release: pressed once the release has moved on, or pressed again.
NOT_RETRYABLE = "only an interrupted release can be retried."
RETRY_TAKEN = "a retry of this release was already started."


# --- refusals of the command itself ------------------------------------------------------------------------
def not_in_pipeline(env: str, service: str, pipeline: Sequence[str]) -> str:
    return f"{env} is not in {service}'s pipeline ({' → '.join(pipeline)})."


def first_stage(env: str, service: str) -> str:
    """A promote to the first stage: there is nothing before it to promote from."""
    return f"{env} is {service}'s first stage: name a version, e.g. `/release {env} 1.4.2`."


def promote_backwards(pipeline: Sequence[str]) -> str:
    return f"promote goes forward along the pipeline ({' → '.join(pipeline)})."


def nothing_to_promote(source_env: str, env: str) -> str:
    return f"nothing runs in {source_env} yet, so there is nothing to promote to {env}."


def unknown_candidate(version: str, service: str, recent: Sequence[str]) -> str:
    """``recent``: the service's newest candidate versions, newest first."""
    known = ", ".join(escape(v) for v in recent) or "none yet"
    return (
        f"{escape(version)} is not a known {service} candidate (recent: {known}). Register it first: from CI with "
        f"`POST /api/v1/candidates`, or `release-bot candidate add {service} {escape(version)} …` (at the console too)."
    )


def not_passed_previous(version: str, previous: str, env: str) -> str:
    shown = escape(version)
    return (
        f"{shown} has not been released to {previous} yet; {env} only gets versions that "
        f"passed {previous}. Run `/release {previous} {shown}` first."
    )


def already_runs(env: str, version: str, since: datetime, zone: ZoneInfo) -> str:
    return f"{env} already runs {escape(version)} (since {when(since, zone)})."


# --- the gates break-glass may carry ------------------------------------------------------------------------
def _blockers(env: str, window: WindowDecision, checklist: ChecklistResult, zone: ZoneInfo) -> list[str]:
    """A closed window and an unsatisfied checklist, each said in full."""
    blockers = []
    if not window.open:
        blockers.append(window_mrkdwn(window, zone))
    if not checklist.passed:
        blockers.append(f"{env}'s checklist is not satisfied:\n" + "\n".join(checklist_lines(checklist)))
    return blockers


def needs_break_glass(
    env: str, window: WindowDecision, checklist: ChecklistResult, zone: ZoneInfo, fixes: Sequence[str] = ()
) -> str:
    """The refusal of a request a closed window or its checklist blocks: how to fix what can be fixed
    (``fixes``, from :func:`bot.views.checklist.checklist_fixes`), then the way past it all."""
    blockers = [*_blockers(env, window, checklist, zone), *fixes]
    return "\n".join(blockers) + "\nBreak-glass: add `--force <reason>` (an on-call approver is asked)."


def break_glass_details(
    reason: str, env: str, window: WindowDecision, checklist: ChecklistResult, zone: ZoneInfo
) -> list[str]:
    """What the on-call approver of a break-glass release is shown (stored with the request, as mrkdwn):
    the requester's reason and what it bypasses."""
    return [f"Reason: {escape(reason)}", *_blockers(env, window, checklist, zone)]


def outside_window_reason(window: WindowDecision) -> str:
    """The reason of the checklist item a break-glass release outside its window records (mrkdwn, as every
    checklist reason is)."""
    why = "; ".join(closed_reason(r) for r in window.reasons) or "closed"
    return f"deployment window closed: {why}"


# --- the answer -------------------------------------------------------------------------------------------
def started(release: Release) -> Message:
    return info(f"Release #{release.id}: {escape(release.version)} to {release.env} has started.")


def awaiting_approval(release: Release) -> Message:
    return info(f"Release #{release.id} of {escape(release.version)} to {release.env} is waiting for approval.")
