"""The pure train core: slot parsing, departures in the configured zone across DST changes (tables, read with
the clock moved by time-machine, as the engine reads it), and a property: no departure ever runs while its
environment's window is closed, checked against an independent oracle (wall clock + the holidays package)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import Config, parse_config
from bot.core.trains import Slot, departures, is_slot, next_running, parse_slot, passed, still_open, upcoming
from bot.core.windows import WindowPolicy

TORONTO = ZoneInfo("America/Toronto")
LONDON = ZoneInfo("Europe/London")
DEPLOY = {"provider": "command", "run": ["true"]}


def config(timezone: str = "America/Toronto", days: list[str] | None = None, **hours: Any) -> Config:
    return parse_config(
        {
            "timezone": timezone,
            "calendar": {"country": "CA", "subdivision": "ON"},
            "business_hours": {
                "days": days or ["mon", "tue", "wed", "thu", "fri"],
                "start": "09:00",
                "end": "16:00",
                "last_release_before_non_working_day": "12:00",
                **hours,
            },
            "freezes": [{"start": "2026-12-18", "end": "2027-01-04", "reason": "End-of-year freeze"}],
            "services": {"svc": {"channel": "C01TEST", "pipeline": ["staging", "prod"]}},
            "environments": {
                "staging": {"window": "always", "deploy": DEPLOY},
                "prod": {"window": "business_hours", "deploy": DEPLOY},
            },
        }
    )


# --- parsing -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "days", "clock"),
    [
        ("Mon-Thu 10:00", {0, 1, 2, 3}, time(10, 0)),
        ("Fri 10:00", {4}, time(10, 0)),
        ("Mon,Wed 09:30", {0, 2}, time(9, 30)),
        ("monday,FRIDAY 7:05", {0, 4}, time(7, 5)),
        ("Mon-Tue,Thu 23:59", {0, 1, 3}, time(23, 59)),
        ("Fri-Mon 00:00", {4, 5, 6, 0}, time(0, 0)),  # a range may wrap the week
    ],
)
def test_slots_parse(text: str, days: set[int], clock: time) -> None:
    slot = parse_slot(text)
    assert (set(slot.days), slot.clock, slot.text) == (days, clock, text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Mon-Thu 25:00", "'25:00' in 'Mon-Thu 25:00' is not a time of day (00:00 to 23:59)"),
        ("Mon 10:60", "is not a time of day"),
        ("Mon 10", "'10' in 'Mon 10' is not a time (use HH:MM, 24-hour)"),
        ("Mon 1０:00", "is not a time (use HH:MM"),  # a full-width digit
        ("Funday 10:00", "'Funday' in 'Funday 10:00' is not a day name"),
        ("Mon-Fun 10:00", "'Fun' in 'Mon-Fun 10:00' is not a day name"),
        ("Mon,,Tue 10:00", "has an empty day in its list"),
        ("10:00", "is not a departure: use '<days> HH:MM'"),
        ("Mon 10:00 EST", "is not a departure"),
        ("", "is not a departure"),
    ],
)
def test_bad_slots_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        parse_slot(text)
    assert words in str(caught.value)


# --- departures across DST, read at the moment the clock says --------------------------------------------------
def next_from_now(slots: list[str], zone: ZoneInfo, count: int) -> list[datetime]:
    """What the engine does: the next departures from the current instant."""
    return list(itertools.islice(departures([parse_slot(s) for s in slots], datetime.now(UTC), zone), count))


@pytest.mark.parametrize(
    ("now", "slots", "zone", "expected"),
    [
        # Toronto springs forward on Sun 14 Mar 2027 at 02:00 → 03:00: 02:30 does not exist; it departs at the
        # first instant after the gap, 03:00 EDT (07:00 UTC), then the next Sunday at 02:30 EDT.
        (
            datetime(2027, 3, 13, 12, 0, tzinfo=UTC),
            ["Sun 02:30"],
            TORONTO,
            [datetime(2027, 3, 14, 7, 0, tzinfo=UTC), datetime(2027, 3, 21, 6, 30, tzinfo=UTC)],
        ),
        # A 02:30 and a 03:00 slot that day land on one instant: one departure, not two.
        (
            datetime(2027, 3, 13, 12, 0, tzinfo=UTC),
            ["Sun 02:30", "Sun 03:00"],
            TORONTO,
            [
                datetime(2027, 3, 14, 7, 0, tzinfo=UTC),
                datetime(2027, 3, 21, 6, 30, tzinfo=UTC),
                datetime(2027, 3, 21, 7, 0, tzinfo=UTC),
            ],
        ),
        # Toronto falls back on Sun 7 Nov 2027 at 02:00 → 01:00: 01:30 happens twice; it departs once, at the
        # first (EDT, 05:30 UTC), never again at 01:30 EST (06:30 UTC).
        (
            datetime(2027, 11, 6, 12, 0, tzinfo=UTC),
            ["Sun 01:30"],
            TORONTO,
            [datetime(2027, 11, 7, 5, 30, tzinfo=UTC), datetime(2027, 11, 14, 6, 30, tzinfo=UTC)],
        ),
        # Read during the repeated hour itself, after the first 01:30: it has departed; the second 01:30 is
        # not a departure, the next is a week later.
        (
            datetime(2027, 11, 7, 6, 0, tzinfo=UTC),  # 01:00 EST, the second pass through 01:xx
            ["Sun 01:30"],
            TORONTO,
            [datetime(2027, 11, 14, 6, 30, tzinfo=UTC)],
        ),
        # A weekday train keeps its local time across the change: 10:00 EST is 15:00 UTC, 10:00 EDT 14:00 UTC.
        (
            datetime(2027, 3, 11, 12, 0, tzinfo=UTC),
            ["Mon-Fri 10:00"],
            TORONTO,
            [
                datetime(2027, 3, 11, 15, 0, tzinfo=UTC),
                datetime(2027, 3, 12, 15, 0, tzinfo=UTC),
                datetime(2027, 3, 15, 14, 0, tzinfo=UTC),
            ],
        ),
        # London springs forward at 01:00 → 02:00 on Sun 28 Mar 2027.
        (
            datetime(2027, 3, 27, 12, 0, tzinfo=UTC),
            ["Sun 01:15"],
            LONDON,
            [datetime(2027, 3, 28, 1, 0, tzinfo=UTC), datetime(2027, 4, 4, 0, 15, tzinfo=UTC)],
        ),
        # A departure exactly now is still ahead (at or after now).
        (
            datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
            ["Tue 10:00"],
            TORONTO,
            [datetime(2026, 11, 24, 15, 0, tzinfo=UTC)],
        ),
    ],
)
def test_departures_across_dst(now: datetime, slots: list[str], zone: ZoneInfo, expected: list[datetime]) -> None:
    with time_machine.travel(now, tick=False):
        assert next_from_now(slots, zone, len(expected)) == expected


@pytest.mark.parametrize(
    ("now", "expected_runs"),
    [
        # Tue 24 Nov 2026 08:00 Toronto: 10:00 and 14:00 run; Wed 10:00 runs.
        (datetime(2026, 11, 24, 13, 0, tzinfo=UTC), [True, True, True]),
        # Fri 18 Dec 2026: the end-of-year freeze starts; nothing runs until Tue 5 Jan.
        (datetime(2026, 12, 17, 20, 0, tzinfo=UTC), [False, False, False]),
    ],
)
def test_upcoming_departures_say_whether_they_run(now: datetime, expected_runs: list[bool]) -> None:
    cfg = config()
    policy = WindowPolicy(cfg)
    slots = [parse_slot("Mon-Thu 10:00"), parse_slot("Mon-Thu 14:00"), parse_slot("Fri 10:00")]
    with time_machine.travel(now, tick=False):
        found = upcoming(slots, policy, "prod", datetime.now(UTC), 3)
    assert [d.runs for d in found] == expected_runs
    for d in found:
        assert d.runs or d.reasons, "a departure that does not run says why"


def test_a_closed_departure_names_why_and_the_next_that_runs() -> None:
    policy = WindowPolicy(config())
    slots = [parse_slot("Mon-Thu 14:00"), parse_slot("Fri 10:00")]
    # Thu 24 Dec 2026 14:00: inside the end-of-year freeze (and Christmas Eve's cut-off).
    [closed] = upcoming(slots, policy, "prod", datetime(2026, 12, 24, 18, 0, tzinfo=UTC), 1)
    assert not closed.runs and any(r.code == "freeze" for r in closed.reasons), closed
    # The freeze ends Mon 4 Jan 2027; the next departure that runs is Tue 5 Jan 14:00.
    assert next_running(slots, policy, "prod", closed.at) == datetime(2027, 1, 5, 14, 0, tzinfo=TORONTO)


def test_a_friday_afternoon_departure_is_closed_by_the_cutoff() -> None:
    policy = WindowPolicy(config())
    [friday] = upcoming([parse_slot("Fri 14:00")], policy, "prod", datetime(2026, 11, 27, 12, 0, tzinfo=UTC), 1)
    assert not friday.runs and [r.code for r in friday.reasons] == ["cutoff"]


def test_no_departure_within_a_year_is_none() -> None:
    policy = WindowPolicy(config())
    assert next_running([parse_slot("Sat 10:00")], policy, "prod", datetime(2026, 11, 24, tzinfo=UTC)) is None


def test_a_late_departure_runs_only_inside_the_window_it_fell_in() -> None:
    policy = WindowPolicy(config())
    at = datetime(2026, 11, 24, 10, 0, tzinfo=TORONTO)  # Tuesday, the window closes at 16:00
    assert still_open(policy, "prod", at, at + timedelta(hours=5, minutes=59))
    assert not still_open(policy, "prod", at, datetime(2026, 11, 24, 16, 0, tzinfo=TORONTO))
    assert not still_open(policy, "prod", at, datetime(2026, 11, 25, 10, 0, tzinfo=TORONTO)), "the next window"
    assert not still_open(policy, "prod", datetime(2026, 11, 24, 17, 0, tzinfo=TORONTO), at + timedelta(hours=8))


# --- the property: no departure ever runs in a closed window ------------------------------------------------
PROPERTY_CONFIG = config()
PROPERTY_POLICY = WindowPolicy(PROPERTY_CONFIG)
ONTARIO = holidays.country_holidays("CA", subdiv="ON", years=range(2026, 2029))
FREEZE = (date(2026, 12, 18), date(2027, 1, 4))


def _working(day: date) -> bool:
    return day.weekday() < 5 and day not in ONTARIO and not FREEZE[0] <= day <= FREEZE[1]


def oracle_open(at: datetime) -> bool:
    """Independent of the window policy: the wall clock in Toronto, Ontario's holidays, the freeze, and the
    12:00 cut-off before a non-working day."""
    local = at.astimezone(TORONTO)
    day = local.date()
    if not _working(day):
        return False
    close = time(12, 0) if not _working(day + timedelta(days=1)) else time(16, 0)
    return time(9, 0) <= local.time().replace(tzinfo=None) < close


slot_strategy = st.builds(
    lambda days, hour, minute: Slot(frozenset(days), time(hour, minute), "generated"),
    st.sets(st.integers(0, 6), min_size=1, max_size=7),
    st.integers(0, 23),
    st.sampled_from([0, 1, 15, 30, 45, 59]),
)


@settings(max_examples=300, deadline=None)
@given(
    slots=st.lists(slot_strategy, min_size=1, max_size=4),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 6, 30), timezones=st.just(UTC)),
)
def test_no_departure_ever_runs_in_a_closed_window(slots: list[Slot], start: datetime) -> None:
    found = upcoming(slots, PROPERTY_POLICY, "prod", start, 12)
    assert [d.at for d in found] == sorted({d.at for d in found}), "in order, each instant once"
    for d in found:
        assert d.at >= start
        assert d.runs is oracle_open(d.at), (d, d.at.astimezone(TORONTO))
    following = next_running(slots, PROPERTY_POLICY, "prod", start, days=60)
    if following is not None:
        assert oracle_open(following)
        assert not any(d.runs and d.at < following for d in found), "nothing runs before the next running one"


def test_a_departure_is_a_slot_only_of_the_timetable_that_has_it() -> None:
    slots = [parse_slot("Mon-Fri 14:00")]
    tuesday = datetime(2026, 11, 24, 14, 0, tzinfo=TORONTO)
    assert is_slot(slots, tuesday, TORONTO)
    assert not is_slot([parse_slot("Mon-Fri 11:00")], tuesday, TORONTO), "departs changed"
    assert not is_slot([parse_slot("Mon,Wed 14:00")], tuesday, TORONTO), "its day is gone"
    assert not is_slot(slots, tuesday, LONDON), "the timezone changed under it"


def test_passed_departures_are_those_before_now_and_bounded_by_a_year() -> None:
    slots = [parse_slot("Mon-Fri 14:00")]
    start = datetime(2026, 11, 24, 14, 0, 1, tzinfo=TORONTO)
    now = datetime(2026, 11, 27, 14, 0, tzinfo=TORONTO)
    assert passed(slots, start, now, TORONTO) == [
        datetime(2026, 11, 25, 14, 0, tzinfo=TORONTO),
        datetime(2026, 11, 26, 14, 0, tzinfo=TORONTO),
    ], "the departure at now is not passed yet"
    long_ago = passed(slots, start, now + timedelta(days=800), TORONTO)
    assert long_ago[0] >= now + timedelta(days=800 - 366) and len(long_ago) < 270, "a bounded walk"
