"""Rendering of window decisions: one line of text for people, a JSON-ready dict for machines.

Names of days and months are spelled here rather than with ``strftime("%a")`` so the output does not
depend on the process locale.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from bot.core.windows import Reason, WindowDecision

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_day(day: date) -> str:
    """A short date, e.g. "Mon 18 May"."""
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def format_local(instant: datetime, zone: ZoneInfo) -> str:
    """An instant as a wall-clock time in ``zone``, e.g. "Tue 29 Dec 09:00 EST"."""
    local = instant.astimezone(zone)
    return f"{format_day(local.date())} {local:%H:%M} {local.tzname()}"


def _for_you(instant: datetime, zone: ZoneInfo, user_zone: ZoneInfo | None) -> str:
    """ " (… for you)" when the user's zone shows a different wall-clock time."""
    if user_zone is None:
        return ""
    theirs = format_local(instant, user_zone)
    return "" if theirs == format_local(instant, zone) else f" ({theirs} for you)"


def _own_text(reason: Reason) -> str:
    return reason.text


def decision_text(
    decision: WindowDecision,
    zone: ZoneInfo,
    user_zone: ZoneInfo | None = None,
    *,
    reason_text: Callable[[Reason], str] = _own_text,
) -> str:
    """One sentence, e.g. "prod is closed: Christmas Day. Next window: Tue 29 Dec 09:00 EST.".

    ``reason_text`` words each reason the window is closed (a renderer passes one that escapes).
    """
    env = decision.environment
    if decision.open:
        close = decision.next_close
        if close is None:
            return f"{env} is open (window: always)." if decision.always else f"{env} is open."
        local_close = close.astimezone(zone)
        if local_close.date() == decision.at.astimezone(zone).date():
            when = f"{local_close:%H:%M} {local_close.tzname()} today"
        else:
            when = format_local(close, zone)
        return f"{env} is open until {when}{_for_you(close, zone, user_zone)}."
    why = "; ".join(reason_text(reason) for reason in decision.reasons)
    if decision.next_open is None:
        return f"{env} is closed: {why}."
    opens = decision.next_open
    when = f"{format_local(opens, zone)}{_for_you(opens, zone, user_zone)}"
    return f"{env} is closed: {why}. Next window: {when}."


def _reason_json(reason: Reason) -> dict[str, Any]:
    out: dict[str, Any] = {"code": reason.code, "text": reason.text}
    if reason.category is not None:
        out["category"] = reason.category  # holidays only: `public`, `catholic`, …, or `extra`
    return out


def decision_json(decision: WindowDecision) -> dict[str, Any]:
    """The decision as JSON-ready data: ISO-8601 instants with offsets (or null) and coded reasons.

    A holiday reason also carries ``category``; its ``text`` names the category unless it is public.
    """
    return {
        "environment": decision.environment,
        "at": decision.at.isoformat(),
        "open": decision.open,
        "reasons": [_reason_json(reason) for reason in decision.reasons],
        "next_open": None if decision.next_open is None else decision.next_open.isoformat(),
        "next_close": None if decision.next_close is None else decision.next_close.isoformat(),
    }
