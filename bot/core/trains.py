"""Release trains: when a train departs, and whether a departure runs. Pure.

A train leaves at configured slots (``"Mon-Thu 10:00"``, ``"Fri 10:00"``, ``"Mon,Wed 09:30"``) in the
configured time zone. Time rules, the same as the window policy's (``bot.core.windows.local_instant``):

- a slot inside a spring-forward gap (02:30 on a day that jumps from 02:00 to 03:00) departs at the first
  instant after the gap (03:00 local): the train still leaves that day, as soon as the clock allows;
- a slot inside an autumn repeated hour (01:30 on a day that goes 01:59 → 01:00) departs once, at its first
  occurrence (``fold=0``);
- two slots that land on the same instant (02:30 moved to 03:00 beside a 03:00 slot) are one departure.

Whether a departure runs is the window policy's decision at its instant (:class:`WindowPolicy`): a departure
whose environment window is closed then (holiday, configured freeze, cut-off, outside hours, non-working day)
does not run. Nothing here decides openness itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # bot.core.windows imports bot.config, whose train model parses slots with this module
    from bot.core.windows import AdhocFreeze, Reason, WindowDecision, WindowPolicy

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SLOT_USAGE = "'<days> HH:MM', e.g. 'Mon-Thu 10:00', 'Fri 10:00' or 'Mon,Wed 09:30'"
# How far ahead a "next departure that runs" is looked for: the window policy's own search bound.
SEARCH_DAYS = 366


class DepartureState:
    """The states of a departure row: pending until its boarding call, then boarding, then one final state."""

    PENDING = "pending"  # stored, armed; its boarding call has not gone out
    BOARDING = "boarding"  # the boarding call went out; Hold and Leave off work until it departs
    DEPARTED = "departed"  # claimed at its time: its services went (or were refused) through the release path
    HELD = "held"  # someone held it (``reason``, ``held_by``): nothing departs
    MISSED = "missed"  # the bot was down at its time and its window had closed by the time it was back
    CLOSED = "closed"  # its window is closed at its time (``reason``): it does not run
    CANCELLED = "cancelled"  # its train's timetable changed, or the train was removed (``reason``): it does not run


class BoardingState:
    """The states of one service on one departure."""

    BOARDING = "boarding"  # announced in the boarding call
    LEFT_OFF = "left_off"  # someone clicked Leave off (``by``)
    BOARDED = "boarded"  # claimed at departure; ``release_id`` once its release is recorded
    SKIPPED = "skipped"  # nothing new to carry (or it cannot be planned: ``reason``)
    REFUSED = "refused"  # the release path refused it at departure (``reason``: checklist, lock, …)
    # Boarded, but its release did not ship (failed, rolled back, interrupted, cancelled) and a later departure
    # boarded the same version: that row is the boarded one now; this one keeps its ``release_id`` as history.
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class Slot:
    """One ``departs`` entry: the weekdays (0 = Monday) and the local time."""

    days: frozenset[int]
    clock: time
    text: str


@dataclass(frozen=True)
class Departure:
    """One departure and the window policy's decision at its instant."""

    at: datetime  # aware, in UTC
    runs: bool
    reasons: tuple[Reason, ...]  # why it does not run (empty when it runs)


def _day(word: str, text: str) -> int:
    lowered = word.strip().lower()
    for index, (short, full) in enumerate(zip(DAY_NAMES, _FULL_NAMES, strict=True)):
        if lowered in (short, full):
            return index
    raise ValueError(f"{word.strip()[:20]!r} in {text!r} is not a day name (mon, tue, wed, thu, fri, sat, sun)")


def _days(spec: str, text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in spec.split(","):
        if not part.strip():
            raise ValueError(f"{text!r} has an empty day in its list; use {SLOT_USAGE}")
        if "-" in part:
            first, _, last = part.partition("-")
            start, end = _day(first, text), _day(last, text)
            # A range may wrap the week: "Fri-Mon" is Friday, Saturday, Sunday and Monday.
            span = (end - start) % 7
            days.update((start + i) % 7 for i in range(span + 1))
        else:
            days.add(_day(part, text))
    return frozenset(days)


def parse_slot(text: str) -> Slot:
    """Parse one ``departs`` entry; ValueError with a message that quotes it and says what is wrong."""
    words = text.split()
    if len(words) != 2:
        raise ValueError(f"{text!r} is not a departure: use {SLOT_USAGE}")
    spec, clock = words
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", clock)
    if match is None or not clock.isascii():
        raise ValueError(f"{clock[:20]!r} in {text!r} is not a time (use HH:MM, 24-hour)")
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        raise ValueError(f"{clock!r} in {text!r} is not a time of day (00:00 to 23:59)")
    return Slot(_days(spec, text), time(hour, minute), text)


def departure_instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The instant a slot at ``clock`` on local ``day`` departs, in UTC (gap: the first instant after it;
    repeated hour: its first occurrence). UTC, because Python never finds an ambiguous local time equal to
    any instant of another zone (PEP 495), and departures are compared, deduplicated and stored."""
    from bot.core.windows import local_instant  # see the TYPE_CHECKING import above

    return local_instant(day, clock, zone)


def departures(slots: Sequence[Slot], start: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    """Every departure at or after the aware instant ``start``, in order, each instant once. Endless when
    ``slots`` is non-empty (every slot names at least one weekday): take what you need."""
    if not slots:
        return
    # A slot's instant always falls on its own local date (a gap moves it to later that day), so starting
    # at ``start``'s local date misses nothing.
    day = start.astimezone(zone).date()
    while True:
        instants = sorted({departure_instant(day, s.clock, zone) for s in slots if day.weekday() in s.days})
        for instant in instants:
            if instant >= start:
                yield instant
        day += timedelta(days=1)


def decide(
    policy: WindowPolicy, env: str, at: datetime, adhoc: Sequence[AdhocFreeze] = ()
) -> tuple[Departure, WindowDecision]:
    """Whether the departure at ``at`` runs: exactly the window policy's decision for ``env`` then."""
    decision = policy.decide(env, at, adhoc)
    return Departure(at, decision.open, decision.reasons), decision


def upcoming(slots: Sequence[Slot], policy: WindowPolicy, env: str, start: datetime, count: int) -> list[Departure]:
    """The next ``count`` departures at or after ``start``, each with whether it runs."""
    found: list[Departure] = []
    for at in departures(slots, start, policy.zone):
        if len(found) >= count:
            break
        found.append(decide(policy, env, at)[0])
    return found


def next_running(
    slots: Sequence[Slot], policy: WindowPolicy, env: str, start: datetime, *, days: int = SEARCH_DAYS
) -> datetime | None:
    """The first departure at or after ``start`` whose window is open, within ``days``; None past that."""
    limit = start + timedelta(days=days)
    for at in departures(slots, start, policy.zone):
        if at > limit:
            return None
        if policy.decide(env, at).open:
            return at
    return None


def still_open(policy: WindowPolicy, env: str, at: datetime, now: datetime) -> bool:
    """May a departure due at ``at`` still run at ``now`` (later: the bot was down)? Only inside the same open
    window: it was open at ``at`` and has not closed since."""
    then = policy.decide(env, at)
    if not then.open:
        return False
    return then.next_close is None or now < then.next_close


def is_slot(slots: Sequence[Slot], at: datetime, zone: ZoneInfo) -> bool:
    """Is ``at`` a departure of ``slots`` (in ``zone``)? False once the timetable (or the zone) changed under it."""
    return next(departures(slots, at, zone), None) == at


def passed(slots: Sequence[Slot], start: datetime, now: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every departure at or after ``start`` and before ``now``, in order (those a bot that was down slept
    through). Looks back at most :data:`SEARCH_DAYS` from ``now``, so a long outage costs a bounded walk."""
    found = []
    for at in departures(slots, max(start, now - timedelta(days=SEARCH_DAYS)), zone):
        if at >= now:
            break
        found.append(at)
    return found


def boards_at(at: datetime, notice: timedelta) -> datetime:
    """When the boarding call of the departure at ``at`` goes out."""
    return at - notice


def slots_of(texts: Iterable[str]) -> tuple[Slot, ...]:
    """Parse every ``departs`` entry (the config validated them already)."""
    return tuple(parse_slot(text) for text in texts)


@dataclass(frozen=True)
class TrainDeparture:
    """One stored departure of the train to ``env`` (bot/store/trains.py)."""

    id: int
    env: str
    at: datetime
    boards_at: datetime
    state: str
    created_at: datetime
    reason: str | None = None  # why it was held, closed or missed
    held_by: str | None = None


@dataclass(frozen=True)
class Boarding:
    """One service on one departure: what it carries and what became of it."""

    id: int
    departure_id: int
    env: str
    service: str
    version: str | None  # None: its source stage runs nothing (skipped)
    state: str
    reason: str | None = None  # why it was skipped, refused, or left off
    by: str | None = None  # who left it off
    release_id: int | None = None
    checklist_ok: bool | None = None  # the checklist at the boarding call (None: not evaluated)
    notes: str | None = None  # the release notes summary at the boarding call
    channel: str | None = None  # where its boarding call (or "will not board") was posted
    message_ts: str | None = None  # that message, edited as the row and its departure move (None: not posted yet;
    # "": posted before calls were remembered, so there is nothing to edit). May be an outbox placeholder.


@dataclass(frozen=True)
class Aboard:
    """What a service would carry on the next departure, as things stand."""

    service: str
    version: str | None  # what its source stage runs (None: nothing)
    source: str | None  # the stage it is carried from
    boards: bool  # False: nothing new (``version`` already runs there) or nothing to carry


@dataclass(frozen=True)
class TrainOutlook:
    """One train for the people looking: its next departures, which run, and what would board."""

    env: str
    upcoming: tuple[Departure, ...]
    next_running: datetime | None
    aboard: tuple[Aboard, ...]
    current: TrainDeparture | None = None  # the stored departure not yet settled (pending or boarding)
    boardings: tuple[Boarding, ...] = ()  # its services, once its boarding call went out
