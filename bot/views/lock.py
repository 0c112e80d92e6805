"""What someone refused by an environment lock is told. Pure.

A lock held by a running release clears itself when the release ends, so "try again once it
finishes" is the way forward. A manual lock (``/release lock <env> <reason>``) never ends on its
own: the refused person needs to know it is one, who placed it and why, and who can lift it.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.core.models import Lock
from bot.views.mrkdwn import escape
from bot.views.render import user, when

__all__ = ["lock_refusal", "manual_lock_text"]


def manual_lock_text(lock: Lock, zone: ZoneInfo, command: str = "/release") -> str:
    """Who placed the manual lock, since when, why, and how to lift it (holder or on-call)."""
    holder = user(lock.holder)
    return (
        f"{lock.service} {lock.env} has a manual lock — no release is running. {holder} locked it "
        f"since {when(lock.acquired_at, zone)}: {escape(lock.reason)}. To lift it, {holder} or on-call "
        f"runs `{command} unlock {lock.env}`."
    )


def lock_refusal(lock: Lock, zone: ZoneInfo) -> str:
    """The refusal for a release that ``lock`` blocks."""
    if lock.kind == "manual":
        return manual_lock_text(lock, zone)
    return (
        f"{lock.service} {lock.env} is busy: {user(lock.holder)} holds it ({escape(lock.reason)}, "
        f"since {when(lock.acquired_at, zone)}). Try again once it finishes."
    )
