"""Scheduled releases in words: the answer to `/release … at …`, the queue, a cancel, and what the channel is told
when one is refused or missed at its time. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.scheduling import MISSED_AFTER, Scheduled
from bot.views.mrkdwn import escape
from bot.views.render import Message, info, section, user, when


def what(s: Scheduled) -> str:
    """``notify 1.2.3 to prod``, or for a promotion ``notify: promote what staging runs to prod``."""
    if s.version is None:
        return f"{s.service}: promote what {s.source_env} runs then to {s.env}"
    return f"{s.service} {escape(s.version)} to {s.env}"


def scheduled(s: Scheduled, zone: ZoneInfo) -> Message:
    """The requester's answer: stored, when, and how to cancel."""
    return info(
        f"🗓️ Scheduled release #{s.id}: {what(s)} at {when(s.at, zone)}. It is checked again then (window, "
        f"checklist, locks) and starts in its own thread, or the channel is told why not. "
        f"`/release cancel {s.id}` cancels it."
    )


def queue(service: str, rows: Sequence[Scheduled], zone: ZoneInfo) -> Message:
    if not rows:
        return info(f"No scheduled releases of {service} are waiting.")
    lines = [f"#{s.id} · {what(s)} · {when(s.at, zone)} · by {user(s.requested_by)}" for s in rows]
    return info(f"*Scheduled releases of {service}*\n" + "\n".join(lines))


def cancelled(s: Scheduled, zone: ZoneInfo) -> Message:
    return info(f"Cancelled scheduled release #{s.id} ({what(s)} at {when(s.at, zone)}).")


def refused(s: Scheduled, reason: str, zone: ZoneInfo) -> Message:
    """Posted in the service's channel: a scheduled release was refused at its time (``reason`` is mrkdwn)."""
    text = (
        f"Scheduled release #{s.id} ({what(s)}, requested by {user(s.requested_by)} for {when(s.at, zone)}) "
        f"did not start: {reason}"
    )
    return Message(text=text, blocks=[section(f"⛔ {text}")])


def missed(s: Scheduled, zone: ZoneInfo) -> Message:
    """Posted in the service's channel: the bot was down at its time and came back too late to start it."""
    late = int(MISSED_AFTER.total_seconds() // 60)
    text = (
        f"Scheduled release #{s.id} ({what(s)}, requested by {user(s.requested_by)} for {when(s.at, zone)}) was "
        f"missed: the bot was not running then and came back more than {late} minutes late. Nothing was "
        f"released; schedule it again if it is still wanted."
    )
    return Message(text=text, blocks=[section(f"⏰ {text}")])


# --- refusals ------------------------------------------------------------------------------------------------
STOPPED_WHILE_STARTING = "the bot stopped while starting it, before a release was recorded; nothing was released."


def in_the_past(at: datetime, now: datetime, zone: ZoneInfo) -> str:
    return (
        f"{when(at, zone)} has already passed (it is {when(now, zone)}): give a later time, "
        f"e.g. `at tomorrow {at.astimezone(zone):%H:%M}`."
    )


def window_always_open(env: str) -> str:
    return f"{env}'s deployment window is always open: give a time instead of `next-window`, or release now."


def no_window_opening(env: str) -> str:
    return f"{env}'s deployment window does not open in the coming weeks, so `next-window` has no time."


def unknown_scheduled(scheduled_id: int, service: str) -> str:
    return f"there is no scheduled release #{scheduled_id} of {service}. `/release queue` lists them."


def not_pending(s: Scheduled) -> str:
    return f"scheduled release #{s.id} is {s.state} already, so there is nothing to cancel."
