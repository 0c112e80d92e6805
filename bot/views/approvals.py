"""Approval requests in words: the request itself, what a decider is told, and what the waiting release's
thread says when a request is denied, expires or is granted. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from bot.core.models import Approval, ApprovalKind, ApprovalState, Lock
from bot.views.lock import manual_lock_text
from bot.views.mrkdwn import escape
from bot.views.render import Message, approval_message, info, thread_reply, user

__all__ = [
    "EXPIRED",
    "GONE",
    "already_voted",
    "approved",
    "approved_but_busy",
    "denied",
    "denied_in_thread",
    "deny_too_late",
    "expired_in_thread",
    "recorded",
    "request",
    "still_waiting",
    "vote_too_late",
]


def request(approval: Approval, zone: ZoneInfo) -> Message:
    """The request with its Approve / Deny buttons (or, once decided, its outcome), from the title and detail
    lines stored with it: the title is plain text, the details mrkdwn."""
    title = str(approval.subject.get("title", "Approval"))
    details = [str(d) for d in approval.subject.get("details", [])]
    return approval_message(approval, zone, title=title, detail_lines=details)


# --- a decider refused -----------------------------------------------------------------------------------
GONE = "that approval request no longer exists."
EXPIRED = "that request has expired; nothing was done. Ask again if it is still needed."


def vote_too_late(state: ApprovalState) -> str:
    return f"that request is already {state.value}; nothing more was done."


def deny_too_late(state: ApprovalState) -> str:
    return f"that request is already {state.value}; nothing changed."


# --- a decider's answer ----------------------------------------------------------------------------------
def recorded() -> Message:
    return info("Your approval is recorded; more approvers are needed.")


def approved() -> Message:
    return info("Approved. On it.")


def already_voted() -> Message:
    return info("You already approved this; waiting for more approvers.")


def denied() -> Message:
    return info("Denied. The requester can see why.")


# --- the waiting release's thread ------------------------------------------------------------------------
def denied_in_thread(by: str, reason: str) -> Message:
    """``by`` denied the request for the reason they typed: the release will not run."""
    return thread_reply(f"🚫 Denied by {user(by)}: {escape(reason)}")


def expired_in_thread() -> Message:
    return thread_reply("⌛ Nobody approved in time, so this did not run. Ask again if it is still needed.")


def still_waiting(granted: ApprovalKind, waiting: Sequence[Approval]) -> Message:
    """One of a release's requests was granted; the others (``waiting``) must be too before it runs."""
    others = ", ".join(f"{a.kind.value} approval from {', '.join(a.eligible_groups)}" for a in waiting)
    return thread_reply(f"✅ {granted.value} approval granted; still waiting for {others}.")


def approved_but_busy(env: str, lock: Lock, zone: ZoneInfo) -> Message:
    """Granted, but ``lock`` held the env, so the release was cancelled rather than queued behind it."""
    busy = (
        manual_lock_text(lock, zone)
        if lock.kind == "manual"  # never frees itself: say who placed it and how to lift it
        else f"{escape(env)} is busy ({escape(lock.reason)}). Ask again when it is free."
    )
    return thread_reply(f"🚫 Approved, but {busy}")
