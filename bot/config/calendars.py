"""The holiday calendar a team works to: country, subdivision, ``holidays`` categories, its own days off and
the holidays it works.

Checks that need the country (a category it offers, a skipped date that is a holiday there) run per item
so an error names its place, e.g. ``calendar.categories[1]``; they read the fields validated before them
(``info.data``) and stay quiet when one of those already failed, since that error is reported anyway.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import holidays
from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

from bot.config.types import Model
from bot.core.holiday_calendar import PUBLIC, holidays_for_year, supported_categories

__all__ = ["Calendar", "ExtraDay", "SkipDay"]


def _where(data: dict[str, Any]) -> str:
    country, subdivision = data["country"], data.get("subdivision")
    return country if subdivision is None else f"{country}-{subdivision}"


def _category(value: str, info: ValidationInfo) -> str:
    country = info.data.get("country")
    if country is None:
        return value
    known = supported_categories(country)
    if value not in known:
        raise ValueError(f"unknown category {value!r} for {country} (known: {', '.join(known)})")
    return value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class ExtraDay(Model):
    date: dt.date
    """A day the team does not release (configured zone)."""
    name: str = Field(min_length=1, max_length=200)
    """Shown as the reason, e.g. "Company day off (extra)"."""


class SkipDay(Model):
    date: dt.date
    """A holiday the team works."""
    name: str | None = Field(default=None, min_length=1, max_length=200)
    """Which of that day's holidays (case-insensitive); omitted means all of them."""


def _skip_item(value: Any) -> Any:
    # `skip: [2026-08-03]` (YAML reads a date) or `skip: ["2026-08-03"]` is short for `{date: …}`.
    return {"date": value} if isinstance(value, dt.date | str) else value


def _a_holiday(item: SkipDay, info: ValidationInfo) -> SkipDay:
    data = info.data
    if "country" not in data or "subdivision" not in data or "categories" not in data:
        return item  # the field that failed is reported; this check would only repeat it
    extra = {e.date for e in data.get("extra", [])}
    if item.date in extra:
        raise ValueError(f"{item.date} is also in calendar.extra: a day is either added or skipped")
    categories = tuple(dict.fromkeys(data["categories"]))
    found = holidays_for_year(data["country"], data["subdivision"], item.date.year, categories).get(item.date, ())
    if not found:
        # Most likely a typo (a wrong day or year): an error, so the holiday is not kept by mistake.
        raise ValueError(
            f"{item.date} is not a holiday in {_where(data)} ({', '.join(categories)}): there is nothing to skip"
        )
    if item.name is not None and not any(n.casefold() == item.name.casefold() for h in found for n in h.names):
        there = "; ".join(h.label for h in found)
        raise ValueError(f"no holiday named {item.name!r} on {item.date} (there: {there})")
    return item


Category = Annotated[str, BeforeValidator(_lower), AfterValidator(_category)]
Skip = Annotated[SkipDay, BeforeValidator(_skip_item), AfterValidator(_a_holiday)]


class Calendar(Model):
    country: str
    """ISO 3166 country code whose holidays close business-hours windows (e.g. `CA`, `GB`)."""
    subdivision: str | None = None
    """Province, state or nation within the country (e.g. `ON`, `ENG`), for regional holidays."""
    categories: list[Category] = Field(default_factory=lambda: [PUBLIC], min_length=1)
    """`holidays` categories that close windows, e.g. `[public, catholic]`; the country must offer each."""
    extra: list[ExtraDay] = Field(default_factory=list)
    """Named days off of the team's own, e.g. `{date: 2026-12-24, name: Company day off}`."""
    skip: list[Skip] = Field(default_factory=list)
    """Holidays the team works: dates, or `{date, name}`; each must be a holiday of the calendar."""

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        if value not in holidays.list_supported_countries():
            raise ValueError(f"unknown country {value!r} (use an ISO 3166-1 alpha-2 code, e.g. CA, GB)")
        return value

    @field_validator("subdivision")
    @classmethod
    def _subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        country = info.data.get("country")
        if value is None or country is None:
            return value
        subdivisions = holidays.list_supported_countries()[country]
        if value not in subdivisions:
            raise ValueError(
                f"unknown subdivision {value!r} for {country} "
                f"(known: {', '.join(subdivisions[:12])}{'…' if len(subdivisions) > 12 else ''})"
            )
        return value

    @field_validator("categories")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a category appears twice")
        return value

    @field_validator("extra", "skip")
    @classmethod
    def _once(cls, value: list[ExtraDay] | list[SkipDay]) -> list[ExtraDay] | list[SkipDay]:
        # One entry per date, except several named holidays skipped on the same day.
        names: dict[dt.date, set[str | None]] = {}
        for item in value:
            name = item.name.casefold() if isinstance(item, SkipDay) and item.name is not None else None
            seen = names.setdefault(item.date, set())
            if seen and (name is None or None in seen or name in seen):
                raise ValueError(f"{item.date} appears twice")
            seen.add(name)
        return value
