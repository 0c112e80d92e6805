"""Deployment windows as Slack mrkdwn: why one is closed, its state on Home, the days closed ahead. Pure.

The core decides in plain text and data; everything typed by a person (a freeze's reason) or read from
config is escaped here, and only user IDs the bot stored become mentions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

from bot.core.window_text import decision_text, format_local
from bot.core.windows import ClosedAhead, Reason, WindowDecision
from bot.views.mrkdwn import escape
from bot.views.render import user

__all__ = ["closed_ahead_lines", "closed_reason", "day_ranges", "window_mrkdwn", "window_summary"]


def closed_reason(reason: Reason) -> str:
    """Why a window is closed: the reason's text escaped; an ad-hoc freeze names who declared it with a
    mention and what they typed, escaped."""
    if reason.freeze is not None:
        return f"ad-hoc freeze by {user(reason.freeze.by)}: {escape(reason.freeze.reason)}"
    return escape(reason.text)


def window_mrkdwn(decision: WindowDecision, zone: ZoneInfo, user_zone: ZoneInfo | None = None) -> str:
    """The window decision as one sentence that nobody's typed text can turn into a ping or link."""
    return decision_text(decision, zone, user_zone, reason_text=closed_reason)


def window_summary(decision: WindowDecision, zone: ZoneInfo) -> str:
    """The window now and its next change, for the Home tab: ``open until …`` or ``closed (why); opens …``."""
    if decision.open:
        return "open" + (f" until {format_local(decision.next_close, zone)}" if decision.next_close else "")
    opening = format_local(decision.next_open, zone) if decision.next_open else "not within a year"
    why = closed_reason(decision.reasons[0]) if decision.reasons else "closed"
    return f"closed ({why}); opens {opening}"


def day_ranges(days: Sequence[date]) -> str:
    """``Tue 22 Dec`` or ``Tue 22 Dec – Thu 24 Dec``, runs of consecutive days joined by commas."""
    runs: list[list[date]] = []
    for day in sorted(days):
        if runs and (day - runs[-1][-1]).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(f"{r[0]:%a %d %b}" + (f" – {r[-1]:%a %d %b}" if len(r) > 1 else "") for r in runs)


def closed_ahead_lines(closures: Sequence[ClosedAhead]) -> list[str]:
    """One line per closure, e.g. ``Wed 25 Nov – Thu 26 Nov: notify prod frozen by <@U…>: maintenance``;
    callers add their own bullets."""
    lines = []
    for closed in closures:
        if closed.service is not None:
            what = f"{escape(closed.service)} {escape(closed.env)} frozen by {user(closed.by)}: {escape(closed.text)}"
        else:
            what = f"{escape(closed.text)} ({escape(closed.env)})"
        lines.append(f"{day_ranges(closed.days)}: {what}")
    return lines
