"""Properties of window decisions over random instants in 2026-2027, checked against an independent oracle.

The oracle reads the wall clock of the instant in the configured zone and asks the `holidays` package
directly; none of the configs below puts an opening or closing time inside a DST gap or overlap (those
rules are covered, instant by instant, in test_windows.py), so the wall-clock reading is exact.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import holidays
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import WEEKDAYS, Config, load_config, parse_config
from bot.core.windows import AdhocFreeze, WindowDecision, WindowPolicy

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "releasebot.yml"
DEPLOY = {"provider": "command", "run": ["true"]}


def _config(timezone: str, country: str, subdivision: str | None, hours: dict[str, Any], **extra: Any) -> Config:
    return parse_config(
        {
            "timezone": timezone,
            "calendar": {"country": country, "subdivision": subdivision},
            "business_hours": hours,
            "services": {"svc": {"channel": "C01TEST", "pipeline": ["staging", "qa", "prod"]}},
            "environments": {
                "staging": {"window": "always", "deploy": DEPLOY},
                "qa": {"window": "business_hours", "deploy": DEPLOY},
                "prod": {"window": "business_hours", "deploy": DEPLOY},
            },
            **extra,
        }
    )


CONFIGS = [
    load_config(EXAMPLE),  # Toronto, CA-ON, 12:00 cut-off, prod-only end-of-year freeze
    _config(
        "Asia/Kolkata",
        "IN",
        None,
        {"start": "09:30", "end": "18:00", "last_release_before_non_working_day": "13:30"},
    ),
    _config(
        "Australia/Adelaide",
        "AU",
        "SA",
        {"start": "08:00", "end": "17:30", "last_release_before_non_working_day": "15:00"},
    ),
    _config(
        "Asia/Kathmandu",
        "NP",
        None,
        {"days": ["sun", "mon", "tue", "wed", "thu", "fri"], "start": "10:00", "end": "17:00"},
    ),
    # Every day, hours spanning the DST change times, freezes for all environments.
    _config(
        "Europe/London",
        "GB",
        "ENG",
        {
            "days": list(WEEKDAYS),
            "start": "00:30",
            "end": "23:30",
            "last_release_before_non_working_day": "22:00",
        },
        freezes=[
            {"start": "2027-08-09", "end": "2027-08-13", "reason": "Summer freeze"},
            {"start": "2026-06-01", "end": "2026-09-30", "reason": "Migration", "environments": ["prod"]},
        ],
    ),
    _config(
        "Europe/Berlin",
        "DE",
        "BY",
        {"start": "09:00", "end": "16:00", "last_release_before_non_working_day": "12:00"},
    ),
    # Cut-offs per weekday, before and after the one before a non-working day.
    _config(
        "America/Toronto",
        "CA",
        "ON",
        {
            "start": "09:00",
            "end": "17:00",
            "last_release_before_non_working_day": "13:00",
            "last_release": {"mon": "15:30", "thu": "12:00", "fri": "14:00"},
        },
    ),
]
POLICIES = [WindowPolicy(config) for config in CONFIGS]
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = (date(2028, 1, 1) - START.date()).days


def _holiday(config: Config, day: date) -> bool:
    assert config.calendar is not None
    table = holidays.country_holidays(
        config.calendar.country, subdiv=config.calendar.subdivision, observed=True, years=day.year
    )
    return day in table


def _frozen(config: Config, env: str, day: date) -> bool:
    return any(f.start <= day <= f.end and (f.environments is None or env in f.environments) for f in config.freezes)


def _working(config: Config, env: str, day: date) -> bool:
    return (
        WEEKDAYS[day.weekday()] in config.business_hours.days
        and not _holiday(config, day)
        and not _frozen(config, env, day)
    )


def oracle_open(config: Config, env: str, instant: datetime, adhoc: list[AdhocFreeze]) -> bool:
    """Open by the rules read straight off the wall clock, without the policy's code."""
    if any(f.environment == env and f.created_at <= instant < f.until for f in adhoc):
        return False
    if config.environments[env].window == "always":
        return True
    wall = instant.astimezone(config.zone)
    day, clock = wall.date(), wall.time().replace(tzinfo=None)
    hours = config.business_hours
    if not _working(config, env, day) or not hours.start <= clock < hours.end:
        return False
    last = next((t for d, t in hours.last_release.items() if d == WEEKDAYS[day.weekday()]), None)
    if last is not None and clock >= last:
        return False
    cutoff = hours.last_release_before_non_working_day
    return cutoff is None or _working(config, env, day + timedelta(days=1)) or clock < cutoff


@st.composite
def cases(draw: st.DrawFn) -> tuple[int, str, datetime, list[AdhocFreeze], int]:
    index = draw(st.integers(0, len(CONFIGS) - 1))
    names = sorted(CONFIGS[index].environments)
    env = draw(st.sampled_from(names))
    at = START + timedelta(days=draw(st.integers(0, DAYS - 1)), seconds=draw(st.integers(0, 86399)))
    adhoc: list[AdhocFreeze] = []
    if draw(st.booleans()):
        created = at + timedelta(minutes=draw(st.integers(-3 * 1440, 3 * 1440)))
        until = created + timedelta(minutes=draw(st.integers(60, 10 * 1440)))
        target = draw(st.sampled_from(names))
        adhoc.append(AdhocFreeze(target, until, "maintenance", "U1", created))
    return index, env, at, adhoc, draw(st.integers(0, 2**32))


def _samples(low: datetime, high: datetime, rng: random.Random) -> list[datetime]:
    """50 random instants in (low, high), plus the second and the minute just before ``high``."""
    span = (high - low).total_seconds()
    points = [low + timedelta(seconds=rng.uniform(0, span)) for _ in range(50)]
    points += [high - timedelta(seconds=1), high - timedelta(minutes=1)]
    return [p for p in points if low < p < high]


@settings(max_examples=1500, deadline=None)
@given(cases())
def test_decisions_match_the_rules_and_their_next_instants(
    case: tuple[int, str, datetime, list[AdhocFreeze], int],
) -> None:
    index, env, at, adhoc, seed = case
    config, policy = CONFIGS[index], POLICIES[index]
    rng = random.Random(seed)

    def decide(instant: datetime) -> WindowDecision:
        return policy.decide(env, instant, adhoc)

    decision = decide(at)
    assert decision.open == oracle_open(config, env, at, adhoc)
    assert decision.open == (decision.reasons == ())
    if decision.open:
        assert decision.next_open is None
        if decision.next_close is not None:
            assert decision.next_close > at
            assert not decide(decision.next_close).open
            assert all(decide(p).open for p in _samples(at, decision.next_close, rng))
    else:
        assert decision.next_close is None
        assert decision.next_open is not None, decision.reasons  # every config here opens within a year
        assert decision.next_open > at
        opened = decide(decision.next_open)
        assert opened.open
        assert oracle_open(config, env, decision.next_open, adhoc)
        assert not any(decide(p).open for p in _samples(at, decision.next_open, rng))
