"""Scheduled releases: when a written `at <when>` falls, and whether a late one still runs. Pure.

``HH:MM`` means today; a time already past today is refused (not moved to tomorrow: say `tomorrow HH:MM`), so
nobody's release starts a day later than they thought. ``<weekday> HH:MM`` is the next such day, today
included when that time is still ahead. ``next-window`` is resolved by the engine from the window policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.grammar import When

# A scheduled release whose time passed while the bot was down still starts when the bot is back within this
# long; later than that it is marked `missed` (and the channel told), since its moment has gone.
MISSED_AFTER = timedelta(hours=1)


def resolve(when: When, now: datetime, zone: ZoneInfo) -> datetime:
    """The instant ``when`` names, seen from ``now`` (aware), in ``zone``; may lie in the past (the caller
    refuses it). ``next-window`` has no clock: resolve it from the window policy instead."""
    assert when.clock is not None, "next-window is resolved from the window policy"
    today = now.astimezone(zone).date()
    if when.day == "today":
        day = today
    elif when.day == "tomorrow":
        day = today + timedelta(days=1)
    elif when.day == "weekday":
        assert when.weekday is not None
        day = today + timedelta(days=(when.weekday - today.weekday()) % 7)
        if datetime.combine(day, when.clock, tzinfo=zone) <= now:
            day += timedelta(days=7)
    else:
        assert when.on is not None
        day = when.on
    return datetime.combine(day, when.clock, tzinfo=zone)


def is_missed(at: datetime, now: datetime) -> bool:
    """Too late to start: due more than :data:`MISSED_AFTER` ago."""
    return now - at > MISSED_AFTER


class ScheduledState:
    """The states of a scheduled release row: pending until it is claimed (starting), then one final state."""

    PENDING = "pending"
    STARTING = "starting"  # claimed by a wake-up: never taken again; a restart settles it from the audit trail
    DONE = "done"  # it became a release (``release_id``)
    REFUSED = "refused"  # admission refused it at its time (``reason``)
    CANCELLED = "cancelled"
    MISSED = "missed"  # the bot was down at its time and came back more than MISSED_AFTER late


@dataclass(frozen=True)
class Scheduled:
    """One scheduled release. ``version`` is None for a promotion (what ``source_env`` runs at its time)."""

    id: int
    service: str
    env: str
    version: str | None
    source_env: str | None
    command: str  # release | deploy | promote: the command it runs as at its time
    requested_by: str
    at: datetime
    state: str
    created_at: datetime
    reason: str | None = None
    release_id: int | None = None
