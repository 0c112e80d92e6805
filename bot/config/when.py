"""Time-of-day and day-of-week rules, e.g. when an environment's releases need approvals.

A rule is a day part, a time part, or both, in the configured zone:

- days: ``fri``, a range ``mon-thu`` (it may wrap: ``fri-mon``), or a comma list of those, ``mon,wed-thu``;
- time: ``after 16:00`` (16:00 up to midnight), ``before 09:00`` (midnight up to 09:00) or ``12:00-13:00``
  (from the first time up to, not including, the second).

``fri after 12:00`` is Friday afternoons; ``["after 16:00", "fri"]`` (a list: any rule) is every evening and
all of Friday.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

from bot.config.types import WEEKDAYS

_DAYS = re.compile(r"^[a-z]{3}(?:-[a-z]{3})?(?:,[a-z]{3}(?:-[a-z]{3})?)*$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
SYNTAX = "'[days] [after HH:MM | before HH:MM | HH:MM-HH:MM]', e.g. 'fri', 'after 16:00', 'mon-thu before 09:00'"


@dataclass(frozen=True)
class TimeRule:
    """One rule: the weekdays it covers (0 = Monday) and the local times, ``start`` up to ``end`` (exclusive)."""

    text: str
    days: frozenset[int]
    start: time  # inclusive
    end: time | None  # exclusive; None: up to midnight

    def matches(self, local: datetime) -> bool:
        """True when the wall-clock ``local`` (already in the configured zone) falls under this rule."""
        clock = local.time().replace(tzinfo=None)
        return local.weekday() in self.days and self.start <= clock and (self.end is None or clock < self.end)

    def __str__(self) -> str:
        return self.text


def parse_time_rule(text: str) -> TimeRule:
    """Parse one rule (see the module docstring); raise ValueError showing the syntax otherwise."""
    words = text.strip().lower().split()
    days = frozenset(range(7))
    if words and _DAYS.match(words[0]):
        days = _days(words.pop(0), text)
    if not words:
        if len(days) == 7:
            raise ValueError(f"bad rule {text!r}: use {SYNTAX}")
        return TimeRule(text, days, time(0, 0), None)
    if len(words) == 2 and words[0] in ("after", "before"):
        clock = _clock(words[1], text)
        if words[0] == "after":
            return TimeRule(text, days, clock, None)
        if clock == time(0, 0):
            raise ValueError(f"bad rule {text!r}: nothing is before 00:00")
        return TimeRule(text, days, time(0, 0), clock)
    if len(words) == 1 and words[0].count("-") == 1:
        first, second = (_clock(part, text) for part in words[0].split("-"))
        if second <= first:
            raise ValueError(
                f"bad rule {text!r}: the range must end after it starts (for a night, give two rules: "
                f"'after {first:%H:%M}' and 'before {second:%H:%M}')"
            )
        return TimeRule(text, days, first, second)
    raise ValueError(f"bad rule {text!r}: use {SYNTAX}")


def _days(part: str, text: str) -> frozenset[int]:
    found: set[int] = set()
    for item in part.split(","):
        first, _, last = item.partition("-")
        for name in (first, last or first):
            if name not in WEEKDAYS:
                raise ValueError(f"bad rule {text!r}: {name!r} is not a day (mon, tue, wed, thu, fri, sat, sun)")
        start, stop = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        found.update((start + i) % 7 for i in range((stop - start) % 7 + 1))
    return frozenset(found)


def _clock(word: str, text: str) -> time:
    match = _CLOCK.match(word)
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"bad rule {text!r}: {word!r} is not a time (HH:MM)")
    return time(int(match.group(1)), int(match.group(2)))


def _rule(value: Any) -> Any:
    return parse_time_rule(value) if isinstance(value, str) else value


# Dumped as written, so a dumped config (the console demo's) validates again.
TimeRuleField = Annotated[TimeRule, BeforeValidator(_rule), PlainSerializer(str, return_type=str)]
