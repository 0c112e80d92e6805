"""Deployment windows: for an environment and an instant, open or closed, every reason, and what's next.

Pure policy over a loaded ``Config``. Rules (SPEC §5 "Windows"):

- ``window: always`` environments are never closed by the calendar (hours, holidays, configured
  freezes); only an ad-hoc freeze (``/release freeze``) closes them.
- ``window: business_hours`` environments are open on configured working days, from ``start`` up to
  (not including) ``end`` in the configured zone, unless the day is a holiday of the calendar (its
  categories' holidays, observed days included, and its ``extra`` days, minus the ``skip`` ones) or inside
  a configured freeze that applies to the environment, or an ad-hoc freeze is in
  force. On a working day whose next calendar day is not a working day (weekend, holiday, or a
  configured-freeze day for this environment), the window closes at
  ``last_release_before_non_working_day`` instead of ``end``; on a weekday with a ``last_release`` time
  (``{fri: "14:00"}``) it closes then. When both apply the earlier one closes it, and its reason is given.

Time-zone rule: opening and closing instants are built from local wall-clock times with ``zoneinfo``
and compared in UTC. A wall-clock time that does not exist (inside a DST gap) means the first instant
after the gap; an ambiguous one (inside a DST overlap) means its first occurrence (``fold=0``).

Decision shape: when open, ``next_open`` is None and ``next_close`` is when the window closes (None
for an ``always`` window with no ad-hoc freeze ahead). When closed, ``next_close`` is None and
``next_open`` is the first open instant, found day by day over local dates for at most
``SEARCH_DAYS``; past that bound ``next_open`` is None and a ``no_opening`` reason says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from bot.config import WEEKDAYS, Calendar, Config
from bot.core.holiday_calendar import HolidayCalendar
from bot.core.window_text import format_day

SEARCH_DAYS = 366
_CACHE_LIMIT = 8192  # day records per environment before the cache is rebuilt (bounds memory)
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

ReasonCode = Literal["outside_hours", "non_working_day", "holiday", "cutoff", "freeze", "adhoc_freeze", "no_opening"]


@dataclass(frozen=True)
class Reason:
    """Why a window is closed: a machine ``code`` and a human ``text``.

    A ``holiday`` reason also names its ``category``: one of the ``holidays`` package's (``public``,
    ``catholic``, ``optional``, …) or ``extra`` for a day the config adds; the text names it unless public.
    An ``adhoc_freeze`` reason carries its ``freeze``, so a renderer can name who declared it and why
    from data rather than from the text.
    """

    code: ReasonCode
    text: str
    category: str | None = None
    freeze: AdhocFreeze | None = None


@dataclass(frozen=True)
class AdhocFreeze:
    """A freeze declared in Slack: in force from ``created_at`` up to (not including) ``until``."""

    environment: str
    until: datetime
    reason: str
    by: str
    created_at: datetime


@dataclass(frozen=True)
class WindowDecision:
    """The window of ``environment`` at instant ``at`` (expressed in the configured zone)."""

    environment: str
    at: datetime
    open: bool
    reasons: tuple[Reason, ...]
    next_open: datetime | None
    next_close: datetime | None
    always: bool


@dataclass(frozen=True)
class ClosedAhead:
    """The days ahead on which one thing closes ``env``: a holiday or configured freeze (``text`` is the
    reason's text), or an ad-hoc freeze of ``service`` declared by ``by`` (``text`` is what they typed)."""

    env: str
    days: tuple[date, ...]  # in order
    text: str
    service: str | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True)
class _Day:
    """One local date of a business-hours environment; instants are UTC."""

    opens: datetime | None  # None: not a working day (closed_reasons says why)
    closes: datetime | None  # the effective close: the cut-off on a cut-off day, else ``ends``
    ends: datetime | None  # the end of business hours
    closed_reasons: tuple[Reason, ...]
    cutoff: Reason | None


def local_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock ``wall`` on ``day`` in ``zone``.

    Ambiguous (DST overlap): the first occurrence. Non-existent (DST gap): the first instant after the gap.
    """
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    # In a gap the two folds use the offsets either side of the transition, so they bracket it;
    # transitions fall on whole seconds, so a bisection over seconds finds it exactly.
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = min(first, second), max(first, second)
    after = high.astimezone(zone).utcoffset()
    step = timedelta(seconds=1)
    while high - low > step:
        mid = low + (high - low) // 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(zone).utcoffset() == after:
            high = mid
        else:
            low = mid
    return high


def adhoc_until(day: date, zone: ZoneInfo) -> datetime:
    """The end of an ad-hoc freeze "until <day>": the start of the next day, aware in ``zone``."""
    return local_instant(day + timedelta(days=1), time(0, 0), zone).astimezone(zone)


def _adhoc_reason(freeze: AdhocFreeze) -> Reason:
    return Reason("adhoc_freeze", f"ad-hoc freeze by {freeze.by}: {freeze.reason}", freeze=freeze)


def _skip_adhoc(start: datetime, freezes: Sequence[AdhocFreeze]) -> datetime:
    """The first instant at or after ``start`` that no ad-hoc freeze covers."""
    moved = True
    while moved:
        moved = False
        for freeze in freezes:
            if freeze.created_at <= start < freeze.until:
                start = freeze.until.astimezone(UTC)
                moved = True
    return start


def _holiday_calendar(calendar: Calendar) -> HolidayCalendar:
    skip: dict[date, frozenset[str] | None] = {}
    for item in calendar.skip:
        names = skip.get(item.date, frozenset())
        # A date skipped without a name drops every holiday that day, whatever else names it.
        skip[item.date] = None if item.name is None or names is None else names | {item.name.casefold()}
    return HolidayCalendar(
        calendar.country,
        calendar.subdivision,
        calendar.categories,
        extra={e.date: e.name for e in calendar.extra},
        skip=skip,
    )


class WindowPolicy:
    """The window rules of one ``Config``, precomputed once; ``decide`` is the hot path."""

    def __init__(self, config: Config) -> None:
        self.zone = config.zone
        hours = config.business_hours
        self._workdays = frozenset(WEEKDAYS.index(day) for day in hours.days)
        self._start = hours.start
        self._end = hours.end
        self._cutoff = hours.last_release_before_non_working_day
        # A weekday's cut-off at `end` closes nothing earlier: only the ones before it are cut-offs.
        self._last_release = {WEEKDAYS.index(day): last for day, last in hours.last_release.items() if last < hours.end}
        self._calendar = _holiday_calendar(config.calendar) if config.calendar else None
        self._always = {name: env.window == "always" for name, env in config.environments.items()}
        self._freezes = {
            name: tuple(f for f in config.freezes if f.environments is None or name in f.environments)
            for name in config.environments
        }
        self._outside = Reason(
            "outside_hours",
            f"outside business hours ({hours.start:%H:%M}–{hours.end:%H:%M} {config.timezone})",
        )
        self._days: dict[str, dict[int, _Day]] = {name: {} for name in config.environments}

    # -- the decision ---------------------------------------------------------------------------

    def decide(self, environment: str, at: datetime, adhoc: Sequence[AdhocFreeze] = ()) -> WindowDecision:
        """Decide the window of ``environment`` at the aware instant ``at``.

        ``adhoc`` may hold freezes of any environment; only this environment's apply (to ``always``
        windows too). Raises ValueError for a naive ``at`` or an unknown environment.
        """
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("at must be timezone-aware")
        always = self._always.get(environment)
        if always is None:
            raise ValueError(f"unknown environment {environment!r} (known: {', '.join(self._always)})")
        now = at.astimezone(UTC)
        mine = [f for f in adhoc if f.environment == environment] if adhoc else []
        if always:
            return self._decide_always(environment, now, mine)

        local = now.astimezone(self.zone)
        day = self._day(environment, local.toordinal())
        reasons = list(day.closed_reasons)
        if day.opens is not None and day.closes is not None and day.ends is not None:
            if now < day.opens or now >= day.ends:
                reasons.append(self._outside)
            if day.cutoff is not None and now >= day.closes:
                reasons.append(day.cutoff)
        reasons.extend(_adhoc_reason(f) for f in mine if f.created_at <= now < f.until)
        if not reasons and day.closes is not None:
            close = day.closes
            for freeze in mine:
                if now < freeze.created_at < close:
                    close = freeze.created_at.astimezone(UTC)
            return WindowDecision(environment, local, True, (), None, close.astimezone(self.zone), False)
        next_open = self._next_open(environment, now, local.toordinal(), mine)
        if next_open is None:
            reasons.append(self._no_opening(local.date()))
        return WindowDecision(
            environment,
            local,
            False,
            tuple(reasons),
            None if next_open is None else next_open.astimezone(self.zone),
            None,
            False,
        )

    def _decide_always(self, environment: str, now: datetime, mine: Sequence[AdhocFreeze]) -> WindowDecision:
        local = now.astimezone(self.zone)
        active = [f for f in mine if f.created_at <= now < f.until]
        if not active:
            ahead = [f.created_at for f in mine if f.created_at > now]
            close = min(ahead).astimezone(self.zone) if ahead else None
            return WindowDecision(environment, local, True, (), None, close, True)
        reasons = [_adhoc_reason(f) for f in active]
        opens: datetime | None = _skip_adhoc(now, mine)
        if opens is not None and opens - now > timedelta(days=SEARCH_DAYS):
            opens = None
            reasons.append(self._no_opening(local.date()))
        return WindowDecision(
            environment,
            local,
            False,
            tuple(reasons),
            None if opens is None else opens.astimezone(self.zone),
            None,
            True,
        )

    def _next_open(self, environment: str, now: datetime, ordinal: int, mine: Sequence[AdhocFreeze]) -> datetime | None:
        """The first open instant at or after ``now``, searching local dates from ``ordinal``."""
        for offset in range(SEARCH_DAYS + 1):
            day = self._day(environment, ordinal + offset)
            if day.opens is None or day.closes is None:
                continue
            candidate = max(day.opens, now)
            if mine:
                candidate = _skip_adhoc(candidate, mine)
            if candidate < day.closes:
                return candidate
        return None

    def _no_opening(self, today: date) -> Reason:
        last = today + timedelta(days=SEARCH_DAYS)
        return Reason(
            "no_opening",
            f"no window opens within {SEARCH_DAYS} days (searched to {format_day(last)} {last.year})",
        )

    # -- the calendar, per local date -----------------------------------------------------------

    def _day(self, environment: str, ordinal: int) -> _Day:
        cache = self._days[environment]
        day = cache.get(ordinal)
        if day is None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            day = self._build_day(environment, date.fromordinal(ordinal))
            cache[ordinal] = day
        return day

    def _closed_reasons(self, environment: str, day: date) -> list[Reason]:
        reasons: list[Reason] = []
        weekday = day.weekday()
        if weekday not in self._workdays:
            name = _WEEKDAY_NAMES[weekday]
            text = f"weekend ({name})" if weekday >= 5 else f"{name} is not a working day"
            reasons.append(Reason("non_working_day", text))
        if self._calendar is not None:
            reasons.extend(Reason("holiday", h.label, h.category) for h in self._calendar.on(day))
        for freeze in self._freezes[environment]:
            if freeze.start <= day <= freeze.end:
                year = "" if freeze.end.year == day.year else f" {freeze.end.year}"
                reasons.append(Reason("freeze", f"{freeze.reason} (until {format_day(freeze.end)}{year})"))
        return reasons

    def _is_working(self, environment: str, day: date) -> bool:
        if day.weekday() not in self._workdays:
            return False
        if self._calendar is not None and self._calendar.on(day):
            return False
        return not any(f.start <= day <= f.end for f in self._freezes[environment])

    def _build_day(self, environment: str, day: date) -> _Day:
        closed = self._closed_reasons(environment, day)
        if closed:
            return _Day(None, None, None, tuple(closed), None)
        opens = local_instant(day, self._start, self.zone)
        ends = local_instant(day, self._end, self.zone)
        closes, cutoff = ends, None
        last = self._last_release.get(day.weekday())
        if last is not None:
            closes = local_instant(day, last, self.zone)
            cutoff = Reason("cutoff", f"after the {last:%H:%M} cut-off on {_WEEKDAY_NAMES[day.weekday()]}s")
        tomorrow = day + timedelta(days=1)
        if self._cutoff is not None and not self._is_working(environment, tomorrow):
            before = local_instant(day, self._cutoff, self.zone)
            if before <= closes:  # the earlier cut-off closes the day; at a tie, the one that names why
                closes = before
                text = f"after the {self._cutoff:%H:%M} cut-off before {self._ahead(environment, tomorrow)}"
                cutoff = Reason("cutoff", text)
        return _Day(opens, closes, ends, (), cutoff)

    def _ahead(self, environment: str, first: date) -> str:
        """Name the non-working stretch from ``first``: its first holiday or freeze, else the weekend."""
        day = first
        for _ in range(31):
            if self._is_working(environment, day):
                break
            name = self._calendar.name_on(day) if self._calendar is not None else None
            if name is not None:
                return f"{name} ({format_day(day)})"
            for freeze in self._freezes[environment]:
                if freeze.start <= day <= freeze.end:
                    return f"{freeze.reason} ({format_day(day)})"
            day += timedelta(days=1)
        if first.weekday() >= 5:
            return f"the weekend ({format_day(first)})"
        return f"a non-working day ({format_day(first)})"
