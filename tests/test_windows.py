"""Deployment windows over real calendars (the `holidays` package), real zones and DST days.

Every expected instant below is written out by hand from the calendar and the zone's offset that day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.config import Config, load_config, parse_config
from bot.core.holiday_calendar import HolidayCalendar, holidays_for_year
from bot.core.window_text import decision_json, decision_text, format_local
from bot.core.windows import SEARCH_DAYS, AdhocFreeze, WindowPolicy, adhoc_until, local_instant

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "releasebot.yml"
DEPLOY = {"provider": "command", "run": ["true"]}


def make_config(
    timezone: str,
    country: str | None = None,
    subdivision: str | None = None,
    *,
    days: list[str] | None = None,
    start: str = "09:00",
    end: str = "16:00",
    cutoff: str | None = "12:00",
    freezes: list[dict[str, Any]] | None = None,
    calendar: dict[str, Any] | None = None,
    last_release: dict[str, str] | None = None,
) -> Config:
    """A minimal config: staging is `always`, qa and prod follow business hours."""
    hours: dict[str, Any] = {
        "start": start,
        "end": end,
        "last_release_before_non_working_day": cutoff,
        "last_release": last_release or {},
    }
    if days is not None:
        hours["days"] = days
    data: dict[str, Any] = {
        "timezone": timezone,
        "business_hours": hours,
        "freezes": freezes or [],
        "services": {"svc": {"channel": "C01TEST", "pipeline": ["staging", "qa", "prod"]}},
        "environments": {
            "staging": {"window": "always", "deploy": DEPLOY},
            "qa": {"window": "business_hours", "deploy": DEPLOY},
            "prod": {"window": "business_hours", "deploy": DEPLOY},
        },
    }
    if country is not None:
        data["calendar"] = {"country": country, "subdivision": subdivision, **(calendar or {})}
    return parse_config(data)


ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
CONFIGS: dict[str, Config] = {
    "CA-ON": make_config("America/Toronto", "CA", "ON"),
    "CA-QC": make_config("America/Toronto", "CA", "QC"),
    "GB-ENG": make_config("Europe/London", "GB", "ENG", end="17:00", cutoff="15:00"),
    "US": make_config("America/New_York", "US"),
    "DE-BY": make_config("Europe/Berlin", "DE", "BY"),
    "AU-NSW": make_config("Australia/Sydney", "AU", "NSW"),
    "AU-SA": make_config("Australia/Adelaide", "AU", "SA"),
    "IN": make_config("Asia/Kolkata", "IN"),
    "NP": make_config("Asia/Kathmandu", "NP"),
    "example": load_config(EXAMPLE),
    # Every day, with hours that start inside the DST gap / overlap of the zone.
    "toronto-gap": make_config("America/Toronto", days=ALL_DAYS, start="02:30", cutoff=None),
    "toronto-overlap": make_config("America/Toronto", days=ALL_DAYS, start="01:30", cutoff=None),
    "london-edges": make_config("Europe/London", days=ALL_DAYS, start="01:30", end="17:00", cutoff=None),
    "prod-freeze": make_config(
        "America/Toronto",
        "CA",
        "ON",
        freezes=[{"start": "2026-07-06", "end": "2026-07-10", "reason": "Audit", "environments": ["prod"]}],
    ),
    # Tuesdays close at 14:00, Thursdays at 15:00, Fridays at 11:00 (before the 12:00 weekend cut-off).
    "weekday-cutoffs": make_config(
        "America/Toronto", "CA", "ON", last_release={"tue": "14:00", "thu": "15:00", "fri": "11:00"}
    ),
    "frozen-400-days": make_config(
        "America/Toronto",
        "CA",
        "ON",
        freezes=[{"start": "2026-01-01", "end": "2027-02-04", "reason": "Migration", "environments": ["prod"]}],
    ),
}
POLICIES = {name: WindowPolicy(config) for name, config in CONFIGS.items()}


def local(config: str, wall: str) -> datetime:
    """A wall-clock time in the config's zone (first occurrence if ambiguous)."""
    return datetime.fromisoformat(wall).replace(tzinfo=CONFIGS[config].zone)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def utc(text: str) -> str:
    return datetime.fromisoformat(text).astimezone(UTC).isoformat()


# (config, env, local wall time, reason codes, a reason text, next_open with offset) — closed instants.
CLOSED = [
    # Canada / Ontario: Christmas on Friday, Boxing Day (Sat) observed Monday.
    ("CA-ON", "prod", "2026-12-25 10:00", ("holiday",), "Christmas Day", "2026-12-29T09:00-05:00"),
    (
        "CA-ON",
        "prod",
        "2026-12-26 10:00",
        ("non_working_day", "holiday"),
        "Boxing Day",
        "2026-12-29T09:00-05:00",
    ),
    ("CA-ON", "prod", "2026-12-28 10:00", ("holiday",), "Boxing Day (observed)", "2026-12-29T09:00-05:00"),
    ("CA-ON", "prod", "2027-12-27 10:00", ("holiday",), "Christmas Day (observed)", "2027-12-29T09:00-05:00"),
    ("CA-ON", "prod", "2027-12-28 10:00", ("holiday",), "Boxing Day (observed)", "2027-12-29T09:00-05:00"),
    ("CA-ON", "prod", "2026-10-12 10:00", ("holiday",), "Thanksgiving Day", "2026-10-13T09:00-04:00"),
    ("CA-ON", "prod", "2026-04-03 10:00", ("holiday",), "Good Friday", "2026-04-06T09:00-04:00"),
    ("CA-ON", "prod", "2026-05-18 10:00", ("holiday",), "Victoria Day", "2026-05-19T09:00-04:00"),
    ("CA-ON", "prod", "2026-02-16 10:00", ("holiday",), "Family Day", "2026-02-17T09:00-05:00"),
    # Quebec: Saint-Jean-Baptiste (24 Jun), not an Ontario holiday.
    (
        "CA-QC",
        "prod",
        "2026-06-24 10:00",
        ("holiday",),
        "Saint Jean Baptiste Day",
        "2026-06-25T09:00-04:00",
    ),
    (
        "CA-QC",
        "prod",
        "2027-06-24 10:00",
        ("holiday",),
        "Saint Jean Baptiste Day",
        "2027-06-25T09:00-04:00",
    ),
    # United States.
    ("US", "prod", "2026-11-26 10:00", ("holiday",), "Thanksgiving Day", "2026-11-27T09:00-05:00"),
    ("US", "prod", "2026-07-03 10:00", ("holiday",), "Independence Day (observed)", "2026-07-06T09:00-04:00"),
    ("US", "prod", "2027-12-24 10:00", ("holiday",), "Christmas Day (observed)", "2027-12-27T09:00-05:00"),
    ("US", "prod", "2027-12-31 10:00", ("holiday",), "New Year's Day (observed)", "2028-01-03T09:00-05:00"),
    # England: Easter Monday and Good Friday 2027, Boxing Day observed 2026.
    ("GB-ENG", "prod", "2027-03-29 10:00", ("holiday",), "Easter Monday", "2027-03-30T09:00+01:00"),
    ("GB-ENG", "prod", "2027-03-26 10:00", ("holiday",), "Good Friday", "2027-03-30T09:00+01:00"),
    ("GB-ENG", "prod", "2026-12-28 10:00", ("holiday",), "Boxing Day (observed)", "2026-12-29T09:00+00:00"),
    # Bavaria: Epiphany and Corpus Christi.
    ("DE-BY", "prod", "2026-01-06 10:00", ("holiday",), "Epiphany", "2026-01-07T09:00+01:00"),
    ("DE-BY", "prod", "2026-06-04 10:00", ("holiday",), "Corpus Christi", "2026-06-05T09:00+02:00"),
    ("DE-BY", "prod", "2027-05-27 10:00", ("holiday",), "Corpus Christi", "2027-05-28T09:00+02:00"),
    # New South Wales: Australia Day (Tue in 2027; Sun 26 Jan 2025 moved to Mon 27), ANZAC Day observed.
    ("AU-NSW", "prod", "2027-01-26 10:00", ("holiday",), "Australia Day", "2027-01-27T09:00+11:00"),
    (
        "AU-NSW",
        "prod",
        "2025-01-26 10:00",
        ("non_working_day",),
        "weekend (Sunday)",
        "2025-01-28T09:00+11:00",
    ),
    ("AU-NSW", "prod", "2025-01-27 10:00", ("holiday",), "Australia Day", "2025-01-28T09:00+11:00"),
    ("AU-NSW", "prod", "2026-04-27 10:00", ("holiday",), "ANZAC Day (observed)", "2026-04-28T09:00+10:00"),
    # India (+05:30): fixed-date national holidays.
    ("IN", "prod", "2026-01-26 10:00", ("holiday",), "Republic Day", "2026-01-27T09:00+05:30"),
    ("IN", "prod", "2026-10-02 10:00", ("holiday",), "Mahatma Gandhi's Jayanti", "2026-10-05T09:00+05:30"),
    # Nepal (+05:45).
    ("NP", "prod", "2026-05-29 10:00", ("holiday",), "Republic Day", "2026-06-01T09:00+05:45"),
    # Adelaide (+10:30 until 5 Apr 2026, then +09:30): Easter long weekend across the DST change.
    (
        "AU-SA",
        "prod",
        "2026-04-02 16:30",
        ("outside_hours", "cutoff"),
        "Good Friday (Fri 3 Apr)",
        "2026-04-07T09:00+09:30",
    ),
    # Cut-off before a long weekend: Friday before Victoria Day.
    (
        "example",
        "prod",
        "2026-05-15 12:30",
        ("cutoff",),
        "after the 12:00 cut-off before Victoria Day (Mon 18 May)",
        "2026-05-19T09:00-04:00",
    ),
    (
        "example",
        "prod",
        "2026-05-15 16:30",
        ("outside_hours", "cutoff"),
        "Victoria Day",
        "2026-05-19T09:00-04:00",
    ),
    (
        "example",
        "prod",
        "2026-05-22 12:00",
        ("cutoff",),
        "after the 12:00 cut-off before the weekend (Sat 23 May)",
        "2026-05-25T09:00-04:00",
    ),
    (
        "GB-ENG",
        "prod",
        "2027-03-25 15:00",
        ("cutoff",),
        "after the 15:00 cut-off before Good Friday (Fri 26 Mar)",
        "2027-03-30T09:00+01:00",
    ),
    # The configured end-of-year freeze (prod only) and the cut-off on the day before it.
    (
        "example",
        "prod",
        "2026-12-17 12:30",
        ("cutoff",),
        "after the 12:00 cut-off before End-of-year freeze (Fri 18 Dec)",
        "2027-01-05T09:00-05:00",
    ),
    (
        "example",
        "prod",
        "2026-12-21 10:00",
        ("freeze",),
        "End-of-year freeze (until Mon 4 Jan 2027)",
        "2027-01-05T09:00-05:00",
    ),
    (
        "example",
        "prod",
        "2026-12-25 10:00",
        ("holiday", "freeze"),
        "Christmas Day",
        "2027-01-05T09:00-05:00",
    ),
    ("example", "prod", "2027-01-04 10:00", ("freeze",), "(until Mon 4 Jan)", "2027-01-05T09:00-05:00"),
    (
        "prod-freeze",
        "prod",
        "2026-07-07 10:00",
        ("freeze",),
        "Audit (until Fri 10 Jul)",
        "2026-07-13T09:00-04:00",
    ),
    (
        "prod-freeze",
        "prod",
        "2026-07-03 12:00",
        ("cutoff",),
        "after the 12:00 cut-off before Audit (Mon 6 Jul)",  # the stretch Sat-Sun-freeze, named by the freeze
        "2026-07-13T09:00-04:00",
    ),
    (
        "prod-freeze",
        "qa",
        "2026-07-03 12:00",
        ("cutoff",),
        "before the weekend (Sat 4 Jul)",
        "2026-07-06T09:00-04:00",
    ),
    # Cut-offs per weekday: the day's own, or the one before a non-working day when that is earlier.
    (
        "weekday-cutoffs",
        "prod",
        "2026-03-10 14:00",
        ("cutoff",),
        "after the 14:00 cut-off on Tuesdays",
        "2026-03-11T09:00-04:00",
    ),
    (
        "weekday-cutoffs",
        "prod",
        "2026-03-13 11:30",
        ("cutoff",),
        "after the 11:00 cut-off on Fridays",
        "2026-03-16T09:00-04:00",
    ),
    (
        "weekday-cutoffs",
        "prod",
        "2026-04-02 12:30",  # Thursday before Good Friday: 12:00 comes before Thursday's 15:00
        ("cutoff",),
        "after the 12:00 cut-off before Good Friday (Fri 3 Apr)",
        "2026-04-06T09:00-04:00",
    ),
    (
        "weekday-cutoffs",
        "prod",
        "2026-03-10 16:30",
        ("outside_hours", "cutoff"),
        "outside business hours",
        "2026-03-11T09:00-04:00",
    ),
    # Outside hours on an ordinary day; weekend.
    (
        "CA-ON",
        "prod",
        "2026-03-10 08:59",
        ("outside_hours",),
        "09:00–16:00 America/Toronto",
        "2026-03-10T09:00-04:00",
    ),
    (
        "CA-ON",
        "prod",
        "2026-03-10 16:00",
        ("outside_hours",),
        "outside business hours",
        "2026-03-11T09:00-04:00",
    ),
    (
        "CA-ON",
        "prod",
        "2026-03-14 10:00",
        ("non_working_day",),
        "weekend (Saturday)",
        "2026-03-16T09:00-04:00",
    ),
]


@pytest.mark.parametrize(("config", "env", "wall", "codes", "text", "next_open"), CLOSED)
def test_closed(config: str, env: str, wall: str, codes: tuple[str, ...], text: str, next_open: str) -> None:
    decision = POLICIES[config].decide(env, local(config, wall))
    assert not decision.open
    assert tuple(r.code for r in decision.reasons) == codes
    assert any(text in r.text for r in decision.reasons), decision.reasons
    assert iso(decision.next_open) == utc(next_open)
    assert decision.next_close is None
    assert decision.next_open is not None
    assert POLICIES[config].decide(env, decision.next_open).open


# (config, env, local wall time, next_close with offset) — open instants.
OPEN = [
    ("example", "prod", "2026-05-15 11:30", "2026-05-15T12:00-04:00"),  # cut-off day: closes at noon
    ("example", "prod", "2026-05-14 13:00", "2026-05-14T16:00-04:00"),  # Thursday: no cut-off
    ("example", "prod", "2026-12-17 11:59", "2026-12-17T12:00-05:00"),  # cut-off before the freeze
    ("example", "prod", "2027-01-05 09:00", "2027-01-05T16:00-05:00"),  # first instant after the freeze
    ("CA-QC", "prod", "2026-05-19 09:00", "2026-05-19T16:00-04:00"),
    ("CA-ON", "prod", "2026-06-24 10:00", "2026-06-24T16:00-04:00"),  # not a holiday in Ontario
    ("GB-ENG", "prod", "2027-03-25 14:59", "2027-03-25T15:00+00:00"),  # GMT until 28 Mar 2027
    ("IN", "prod", "2026-01-27 09:00", "2026-01-27T16:00+05:30"),
    ("NP", "prod", "2026-06-01 15:59", "2026-06-01T16:00+05:45"),
    ("AU-SA", "prod", "2026-04-07 09:00", "2026-04-07T16:00+09:30"),
    ("prod-freeze", "qa", "2026-07-07 10:00", "2026-07-07T16:00-04:00"),  # the freeze is prod-only
    ("weekday-cutoffs", "prod", "2026-03-10 13:59", "2026-03-10T14:00-04:00"),  # Tuesday
    ("weekday-cutoffs", "prod", "2026-03-11 13:00", "2026-03-11T16:00-04:00"),  # Wednesday: no cut-off
    ("weekday-cutoffs", "prod", "2026-03-12 14:00", "2026-03-12T15:00-04:00"),  # Thursday
]


@pytest.mark.parametrize(("config", "env", "wall", "next_close"), OPEN)
def test_open(config: str, env: str, wall: str, next_close: str) -> None:
    policy = POLICIES[config]
    decision = policy.decide(env, local(config, wall))
    assert decision.open
    assert decision.reasons == ()
    assert decision.next_open is None
    assert iso(decision.next_close) == utc(next_close)
    assert decision.next_close is not None
    assert not policy.decide(env, decision.next_close).open


# DST and offset edges, all in UTC: (config, instant, open?, next_open, next_close).
EDGES = [
    # Toronto spring-forward Sun 8 Mar 2026: 02:00 EST -> 03:00 EDT; a 02:30 start means 03:00 EDT.
    ("toronto-gap", "2026-03-07T07:29:59Z", False, "2026-03-07T07:30Z", None),  # day before: 02:30 EST
    ("toronto-gap", "2026-03-08T06:59:59Z", False, "2026-03-08T07:00Z", None),
    ("toronto-gap", "2026-03-08T07:00Z", True, None, "2026-03-08T20:00Z"),  # 16:00 EDT
    # Toronto fall-back Sun 1 Nov 2026: 01:00-02:00 happens twice; a 01:30 start is the first (EDT) one.
    ("toronto-overlap", "2026-11-01T05:29Z", False, "2026-11-01T05:30Z", None),
    ("toronto-overlap", "2026-11-01T06:15Z", True, None, "2026-11-01T21:00Z"),  # 01:15 EST, the 2nd pass
    # London spring-forward Sun 29 Mar 2026: 01:00 GMT -> 02:00 BST; 01:30 means 02:00 BST.
    ("london-edges", "2026-03-29T00:59Z", False, "2026-03-29T01:00Z", None),
    ("london-edges", "2026-03-29T01:00Z", True, None, "2026-03-29T16:00Z"),
    # London fall-back Sun 25 Oct 2026: opens 01:30 BST, closes 17:00 GMT.
    ("london-edges", "2026-10-25T00:29Z", False, "2026-10-25T00:30Z", None),
    ("london-edges", "2026-10-25T16:59Z", True, None, "2026-10-25T17:00Z"),
    # Ordinary hours across a DST weekend: the next opening uses the new offset.
    ("CA-ON", "2026-03-06T22:00Z", False, "2026-03-09T13:00Z", None),  # Fri 17:00 EST -> Mon 09:00 EDT
    ("CA-ON", "2026-10-30T21:00Z", False, "2026-11-02T14:00Z", None),  # Fri 17:00 EDT -> Mon 09:00 EST
    ("GB-ENG", "2026-03-27T17:00Z", False, "2026-03-30T08:00Z", None),  # Fri 17:00 GMT -> Mon 09:00 BST
    ("GB-ENG", "2026-10-23T16:00Z", False, "2026-10-26T09:00Z", None),  # Fri 17:00 BST -> Mon 09:00 GMT
    # Half-hour and 45-minute offsets.
    ("IN", "2026-01-27T03:29:59Z", False, "2026-01-27T03:30Z", None),
    ("IN", "2026-01-27T03:30Z", True, None, "2026-01-27T10:30Z"),
    ("NP", "2026-06-01T03:14Z", False, "2026-06-01T03:15Z", None),
    ("AU-SA", "2026-04-01T22:30Z", True, None, "2026-04-02T01:30Z"),  # Thu 2 Apr 09:00-12:00 ACDT (+10:30)
]


@pytest.mark.parametrize(("config", "instant", "is_open", "next_open", "next_close"), EDGES)
def test_time_zone_edges(
    config: str, instant: str, is_open: bool, next_open: str | None, next_close: str | None
) -> None:
    decision = POLICIES[config].decide("prod", datetime.fromisoformat(instant))
    assert decision.open is is_open
    assert iso(decision.next_open) == (None if next_open is None else utc(next_open))
    assert iso(decision.next_close) == (None if next_close is None else utc(next_close))


@pytest.mark.parametrize(
    ("zone", "day", "wall", "expected"),
    [
        ("America/Toronto", date(2026, 3, 8), time(2, 30), "2026-03-08T07:00Z"),  # gap -> after it
        ("America/Toronto", date(2026, 11, 1), time(1, 30), "2026-11-01T05:30Z"),  # overlap -> first
        ("Europe/London", date(2026, 3, 29), time(1, 0), "2026-03-29T01:00Z"),
        ("America/Havana", date(2026, 3, 8), time(0, 0), "2026-03-08T05:00Z"),  # midnight gap
        ("Australia/Lord_Howe", date(2026, 10, 4), time(2, 15), "2026-10-03T15:30Z"),  # 30-min DST
        ("Asia/Kathmandu", date(2026, 6, 1), time(9, 0), "2026-06-01T03:15Z"),
    ],
)
def test_local_instant(zone: str, day: date, wall: time, expected: str) -> None:
    assert iso(local_instant(day, wall, ZoneInfo(zone))) == utc(expected)


def test_always_window_is_open_through_holidays_and_freezes() -> None:
    decision = POLICIES["example"].decide("staging", local("example", "2026-12-25 03:00"))
    assert decision.open and decision.always
    assert decision.reasons == ()
    assert decision.next_open is None and decision.next_close is None


TORONTO = ZoneInfo("America/Toronto")
MIGRATION = AdhocFreeze(
    environment="staging",
    until=adhoc_until(date(2026, 5, 3), TORONTO),
    reason="database migration",
    by="U123",
    created_at=datetime(2026, 5, 1, 16, 0, tzinfo=UTC),
)


def test_adhoc_until_is_start_of_next_local_day() -> None:
    assert MIGRATION.until.isoformat() == "2026-05-04T00:00:00-04:00"
    assert adhoc_until(date(2026, 3, 7), ZoneInfo("America/Havana")).isoformat() == "2026-03-08T01:00:00-04:00"


def test_adhoc_freeze_closes_an_always_window() -> None:
    policy = POLICIES["example"]
    decision = policy.decide("staging", local("example", "2026-05-02 10:00"), [MIGRATION])
    assert not decision.open and decision.always
    assert [(r.code, r.text) for r in decision.reasons] == [
        ("adhoc_freeze", "ad-hoc freeze by U123: database migration")
    ]
    assert iso(decision.next_open) == utc("2026-05-04T00:00-04:00")
    before = policy.decide("staging", local("example", "2026-05-01 11:00"), [MIGRATION])
    assert before.open and iso(before.next_close) == utc("2026-05-01T16:00Z")
    # A freeze of another environment changes nothing here.
    other = AdhocFreeze("prod", MIGRATION.until, "x", "U9", MIGRATION.created_at)
    assert policy.decide("staging", local("example", "2026-05-02 10:00"), [other]).open


def test_adhoc_freeze_on_business_hours() -> None:
    policy = POLICIES["example"]
    freeze = AdhocFreeze(
        "prod",
        adhoc_until(date(2026, 5, 12), TORONTO),
        "incident",
        "U7",
        local("example", "2026-05-12 10:00"),
    )
    before = policy.decide("prod", local("example", "2026-05-12 09:30"), [freeze])
    assert before.open and iso(before.next_close) == utc("2026-05-12T10:00-04:00")
    during = policy.decide("prod", local("example", "2026-05-12 10:00"), [freeze])
    assert [r.code for r in during.reasons] == ["adhoc_freeze"]
    assert iso(during.next_open) == utc("2026-05-13T09:00-04:00")
    evening = policy.decide("prod", local("example", "2026-05-12 17:00"), [freeze])
    assert [r.code for r in evening.reasons] == ["outside_hours", "adhoc_freeze"]


def test_no_opening_within_a_year() -> None:
    decision = POLICIES["frozen-400-days"].decide("prod", local("frozen-400-days", "2026-01-05 10:00"))
    assert not decision.open
    assert [r.code for r in decision.reasons] == ["freeze", "no_opening"]
    assert f"within {SEARCH_DAYS} days" in decision.reasons[-1].text
    assert decision.next_open is None and decision.next_close is None
    # Near its end the same freeze has an opening: the first working day after 4 Feb 2027.
    later = POLICIES["frozen-400-days"].decide("prod", local("frozen-400-days", "2027-01-05 10:00"))
    assert iso(later.next_open) == utc("2027-02-05T09:00-05:00")


def test_no_opening_for_a_long_adhoc_freeze_on_always() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    freeze = AdhocFreeze("staging", adhoc_until(date(2027, 6, 1), TORONTO), "rebuild", "U1", start)
    decision = POLICIES["example"].decide("staging", start, [freeze])
    assert [r.code for r in decision.reasons] == ["adhoc_freeze", "no_opening"]
    assert decision.next_open is None


def test_rejects_naive_instants_and_unknown_environments() -> None:
    with pytest.raises(ValueError, match="aware"):
        POLICIES["example"].decide("prod", datetime(2026, 5, 12, 10, 0))
    with pytest.raises(ValueError, match="unknown environment 'qa'"):
        POLICIES["example"].decide("qa", datetime(2026, 5, 12, 10, 0, tzinfo=UTC))


def test_decision_text_and_json() -> None:
    us = POLICIES["US"]
    zone = CONFIGS["US"].zone
    closed = us.decide("prod", local("US", "2027-12-24 10:00"))
    assert decision_text(closed, zone, ZoneInfo("Europe/London")) == (
        "prod is closed: Christmas Day (observed). Next window: Mon 27 Dec 09:00 EST (Mon 27 Dec 14:00 GMT for you)."
    )
    assert decision_text(closed, zone) == "prod is closed: Christmas Day (observed). Next window: Mon 27 Dec 09:00 EST."
    opened = us.decide("prod", local("US", "2027-12-21 10:00"))
    assert decision_text(opened, zone) == "prod is open until 16:00 EST today."
    assert decision_json(closed) == {
        "environment": "prod",
        "at": "2027-12-24T10:00:00-05:00",
        "open": False,
        "reasons": [{"code": "holiday", "text": "Christmas Day (observed)", "category": "public"}],
        "next_open": "2027-12-27T09:00:00-05:00",
        "next_close": None,
    }
    assert decision_json(opened)["next_close"] == "2027-12-21T16:00:00-05:00"
    never = POLICIES["frozen-400-days"].decide("prod", local("frozen-400-days", "2026-01-05 10:00"))
    assert decision_text(never, TORONTO).startswith("prod is closed: Migration (until Thu 4 Feb 2027); no window")
    assert decision_json(never)["next_open"] is None
    assert format_local(datetime(2026, 12, 29, 14, 0, tzinfo=UTC), TORONTO) == "Tue 29 Dec 09:00 EST"


def test_holiday_calendar_builds_each_year_once_and_keeps_joined_names() -> None:
    holidays_for_year.cache_clear()
    first, second = HolidayCalendar("IN"), HolidayCalendar("IN")
    assert first.name_on(date(2027, 8, 15)) == "Independence Day; Milad-un-Nabi (estimated)"
    assert second.name_on(date(2027, 8, 16)) is None
    assert first.year(2027) is second.year(2027)
    info = holidays_for_year.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    assert HolidayCalendar("GB", "ENG").name_on(date(2027, 3, 29)) == "Easter Monday"


def test_holiday_names_are_english_whatever_the_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGUAGE", "de")
    monkeypatch.setenv("LANG", "fr_CA.UTF-8")
    holidays_for_year.cache_clear()
    try:
        assert HolidayCalendar("DE", "BY").name_on(date(2026, 1, 6)) == "Epiphany"
        assert HolidayCalendar("CA", "QC").name_on(date(2026, 6, 24)) == "Saint Jean Baptiste Day"
        assert HolidayCalendar("CA", "ON").name_on(date(2026, 9, 7)) == "Labour Day"  # en_CA spelling
        assert HolidayCalendar("US").name_on(date(2026, 9, 7)) == "Labor Day"
    finally:
        holidays_for_year.cache_clear()  # later tests must not see tables built under this locale


# --- calendars a team matches to where it works: categories, extra days, skipped holidays --------------------

BAVARIA = make_config("Europe/Berlin", "DE", "BY", calendar={"categories": ["public", "catholic"]})
ONTARIO_OPTIONAL = make_config("America/Toronto", "CA", "ON", calendar={"categories": ["public", "optional"]})
ONTARIO_OWN = make_config(
    "America/Toronto",
    "CA",
    "ON",
    calendar={
        "extra": [{"date": "2026-12-24", "name": "Company day off"}, {"date": "2026-12-25", "name": "Party"}],
        "skip": ["2026-02-16", {"date": "2026-12-28", "name": "boxing day (observed)"}],
    },
)
BERLIN, TORONTO_ZONE = ZoneInfo("Europe/Berlin"), ZoneInfo("America/Toronto")


def test_a_category_the_team_keeps_closes_the_window_and_is_named() -> None:
    # Assumption Day (Fri 15 Aug 2025) is in Bavaria's catholic category only.
    at = datetime(2025, 8, 15, 10, 0, tzinfo=BERLIN)
    assert POLICIES["DE-BY"].decide("prod", at).open
    closed = WindowPolicy(BAVARIA).decide("prod", at)
    assert (
        decision_text(closed, BERLIN)
        == "prod is closed: Assumption Day (catholic). Next window: Mon 18 Aug 09:00 CEST."
    )
    assert decision_json(closed)["reasons"] == [
        {"code": "holiday", "text": "Assumption Day (catholic)", "category": "catholic"}
    ]
    eve = WindowPolicy(BAVARIA).decide("prod", datetime(2025, 8, 14, 12, 30, tzinfo=BERLIN))
    assert [r.text for r in eve.reasons] == ["after the 12:00 cut-off before Assumption Day (catholic) (Fri 15 Aug)"]
    # A public holiday reads as before, with its category in the JSON.
    epiphany = WindowPolicy(BAVARIA).decide("prod", datetime(2026, 1, 6, 10, 0, tzinfo=BERLIN))
    assert decision_json(epiphany)["reasons"] == [{"code": "holiday", "text": "Epiphany", "category": "public"}]


def test_ontario_optional_holidays_close_only_when_chosen() -> None:
    civic = datetime(2026, 8, 3, 10, 0, tzinfo=TORONTO_ZONE)  # Civic Holiday, Monday
    assert POLICIES["CA-ON"].decide("prod", civic).open
    closed = WindowPolicy(ONTARIO_OPTIONAL).decide("prod", civic)
    assert [(r.code, r.text, r.category) for r in closed.reasons] == [
        ("holiday", "Civic Holiday (optional)", "optional")
    ]
    assert iso(closed.next_open) == utc("2026-08-04T09:00-04:00")
    # The public holidays are still there.
    assert not WindowPolicy(ONTARIO_OPTIONAL).decide("prod", datetime(2026, 7, 1, 10, 0, tzinfo=TORONTO_ZONE)).open


def test_extra_days_close_the_window_by_name() -> None:
    policy = WindowPolicy(ONTARIO_OWN)
    eve = policy.decide("prod", datetime(2026, 12, 24, 10, 0, tzinfo=TORONTO_ZONE))
    assert decision_text(eve, TORONTO_ZONE) == (
        # Mon 28 Dec: Boxing Day (observed) is a skipped holiday in this calendar.
        "prod is closed: Company day off (extra). Next window: Mon 28 Dec 09:00 EST."
    )
    assert decision_json(eve)["reasons"] == [
        {"code": "holiday", "text": "Company day off (extra)", "category": "extra"}
    ]
    # On a public holiday an extra day is a second reason, after the public one.
    christmas = policy.decide("prod", datetime(2026, 12, 25, 10, 0, tzinfo=TORONTO_ZONE))
    assert [(r.text, r.category) for r in christmas.reasons] == [
        ("Christmas Day", "public"),
        ("Party (extra)", "extra"),
    ]
    # The cut-off the day before names the extra day.
    before = policy.decide("prod", datetime(2026, 12, 23, 12, 30, tzinfo=TORONTO_ZONE))
    assert [r.text for r in before.reasons] == ["after the 12:00 cut-off before Company day off (extra) (Thu 24 Dec)"]


def test_skipped_holidays_are_worked_and_others_are_untouched() -> None:
    policy = WindowPolicy(ONTARIO_OWN)
    family_day = datetime(2026, 2, 16, 10, 0, tzinfo=TORONTO_ZONE)
    assert policy.decide("prod", family_day).open
    observed = policy.decide("prod", datetime(2026, 12, 28, 10, 0, tzinfo=TORONTO_ZONE))
    assert observed.open  # Boxing Day (observed) skipped by its name, case-insensitively
    # The same day a year later, and the shared per-year table other policies read, still close.
    assert not policy.decide("prod", datetime(2027, 2, 15, 10, 0, tzinfo=TORONTO_ZONE)).open
    assert not POLICIES["CA-ON"].decide("prod", family_day).open
    assert not WindowPolicy(make_config("America/Toronto", "CA", "ON")).decide("prod", family_day).open


def test_holiday_calendar_categories_share_the_per_year_cache() -> None:
    holidays_for_year.cache_clear()
    first = HolidayCalendar("DE", "BY", ("public", "catholic"))
    second = HolidayCalendar("DE", "BY", ["public", "catholic"])
    assert first.name_on(date(2025, 8, 15)) == "Assumption Day (catholic)"
    assert second.year(2025) is first.year(2025)
    assert holidays_for_year.cache_info().misses == 1
    assert HolidayCalendar("DE", "BY").name_on(date(2025, 8, 15)) is None
    own = HolidayCalendar("DE", "BY", extra={date(2025, 8, 15): "Team day"}, skip={date(2025, 1, 6): None})
    assert own.name_on(date(2025, 8, 15)) == "Team day (extra)" and own.name_on(date(2025, 1, 6)) is None
    assert own.name_on(date(2026, 1, 6)) == "Epiphany"
    assert HolidayCalendar("DE", "BY").name_on(date(2025, 1, 6)) == "Epiphany"
