"""Holidays for one country/subdivision and the categories a team keeps, built once per year and reused.

A thin wrapper over the ``holidays`` package (pure data, no I/O). Every holiday the package gives for
the country/subdivision in the chosen categories counts (``public`` unless configured otherwise, e.g.
``("public", "catholic")`` for a Bavarian team that keeps Assumption Day), including the "(observed)"
days it adds when a holiday falls on a weekend. On top of that a team may add named days of its own
(category ``extra``) and skip holidays it works.

Each holiday carries its category, so a reason can say "Assumption Day (catholic)"; a ``public`` one
is shown by its name alone. Names of one category on one day are joined with "; " as ``holidays``
joins them.

Names are in English whatever the process locale (``holidays`` otherwise reads LANGUAGE/LC_ALL/LANG):
the country's own English variant when it has one (en_CA "Labour Day", en_GB, en_AU, en_IN), else
en_US, else the country's default language when it offers no English at all.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from types import MappingProxyType

import holidays

__all__ = [
    "EXTRA",
    "PUBLIC",
    "Holiday",
    "HolidayCalendar",
    "holiday_language",
    "holidays_for_year",
    "supported_categories",
]

PUBLIC = "public"
EXTRA = "extra"  # a day the team's config adds


@dataclass(frozen=True, slots=True)
class Holiday:
    """The holidays of one category on one day; ``names`` as ``holidays`` lists them."""

    names: tuple[str, ...]
    category: str

    @property
    def name(self) -> str:
        """The names joined with "; ", as ``holidays`` joins them."""
        return "; ".join(self.names)

    @property
    def label(self) -> str:
        """What a person reads: the name, then the category unless it is ``public``."""
        return self.name if self.category == PUBLIC else f"{self.name} ({self.category})"


@lru_cache(maxsize=64)
def holiday_language(country: str, subdivision: str | None) -> str | None:
    """The language holiday names are given in (see the module docstring)."""
    entity = holidays.country_holidays(country, subdiv=subdivision)  # no years: nothing is computed
    default: str | None = entity.default_language
    if default is not None and default.startswith("en"):
        return default
    if "en_US" in entity.supported_languages:
        return "en_US"
    return default


@lru_cache(maxsize=256)
def supported_categories(country: str) -> tuple[str, ...]:
    """The categories ``holidays`` offers for ``country`` (the same for all its subdivisions)."""
    return tuple(holidays.country_holidays(country).supported_categories)


def _table(country: str, subdivision: str | None, year: int, categories: tuple[str, ...]) -> holidays.HolidayBase:
    # ``holidays`` warns when a year is outside the range a country's data covers (e.g. India after
    # 2035); such a year then carries only the holidays the package knows, and the warning is not
    # raised to callers, who ask about arbitrary future instants when searching for the next opening.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return holidays.country_holidays(
            country,
            subdiv=subdivision,
            observed=True,
            years=year,
            categories=categories,
            language=holiday_language(country, subdivision),
        )


def _attribute(
    combined: holidays.HolidayBase, per: Mapping[str, holidays.HolidayBase], categories: tuple[str, ...]
) -> dict[date, tuple[Holiday, ...]]:
    """Split a table of several categories into per-category holidays.

    The combined table is what ``holidays`` gives for the categories together (observed days can move
    differently when another category already holds the next weekday), so it is the truth; each name
    is credited to the first category whose own table has it that day, else (an observed day that only
    exists in combination) to the first category holding the name it was derived from.
    """
    all_names = {cat: {n for day in table for n in table.get_list(day)} for cat, table in per.items()}
    out: dict[date, tuple[Holiday, ...]] = {}
    for day in sorted(combined):
        by_category: dict[str, list[str]] = {}
        for name in combined.get_list(day):
            category = next((c for c in categories if name in per[c].get_list(day)), None)
            if category is None:
                category = next((c for c in categories if any(name.startswith(n) for n in all_names[c])), categories[0])
            by_category.setdefault(category, []).append(name)
        out[day] = tuple(Holiday(tuple(by_category[c]), c) for c in categories if c in by_category)
    return out


@lru_cache(maxsize=512)
def holidays_for_year(
    country: str, subdivision: str | None, year: int, categories: tuple[str, ...] = (PUBLIC,)
) -> Mapping[date, tuple[Holiday, ...]]:
    """The holidays of one year in ``categories`` as a read-only ``date -> holidays`` mapping (cached).

    A day's holidays come one per category, in the order ``categories`` lists them.
    """
    combined = _table(country, subdivision, year, categories)
    table: dict[date, tuple[Holiday, ...]]
    if len(categories) == 1:
        table = {day: (Holiday(tuple(combined.get_list(day)), categories[0]),) for day in sorted(combined)}
    else:
        per = {cat: _table(country, subdivision, year, (cat,)) for cat in categories}
        table = _attribute(combined, per, categories)
    return MappingProxyType(table)


def _without(holidays_on_day: tuple[Holiday, ...], skipped: frozenset[str] | None) -> tuple[Holiday, ...]:
    """The day's holidays minus the skipped names (casefolded); ``None`` skips them all."""
    if skipped is None:
        return ()
    kept = (Holiday(tuple(n for n in h.names if n.casefold() not in skipped), h.category) for h in holidays_on_day)
    return tuple(h for h in kept if h.names)


class HolidayCalendar:
    """The holiday calendar of a country (ISO 3166-1 alpha-2), optional subdivision, and categories.

    For the United Kingdom use country ``GB`` with a subdivision such as ``ENG``. ``extra`` adds named
    closed days (category ``extra``); ``skip`` removes holidays the team works: a date maps to the
    casefolded names to drop that day, or to None for all of them.
    """

    __slots__ = ("categories", "country", "subdivision", "_extra", "_skip", "_touched_years", "_years")

    def __init__(
        self,
        country: str,
        subdivision: str | None = None,
        categories: Iterable[str] = (PUBLIC,),
        *,
        extra: Mapping[date, str] | None = None,
        skip: Mapping[date, frozenset[str] | None] | None = None,
    ) -> None:
        self.country = country
        self.subdivision = subdivision
        self.categories = tuple(dict.fromkeys(categories)) or (PUBLIC,)
        self._extra = dict(extra or {})
        self._skip = dict(skip or {})
        self._touched_years = {d.year for d in (*self._extra, *self._skip)}
        # A per-instance view of the shared per-year cache: one dict lookup on the hot path.
        self._years: dict[int, Mapping[date, tuple[Holiday, ...]]] = {}

    def year(self, year: int) -> Mapping[date, tuple[Holiday, ...]]:
        """Every holiday of ``year`` as ``date -> holidays`` (one entry per category)."""
        table = self._years.get(year)
        if table is None:
            table = holidays_for_year(self.country, self.subdivision, year, self.categories)
            if year in self._touched_years:
                table = self._adjusted(year, table)
            self._years[year] = table
        return table

    def _adjusted(self, year: int, base: Mapping[date, tuple[Holiday, ...]]) -> Mapping[date, tuple[Holiday, ...]]:
        """The shared table with this calendar's skipped and extra days of ``year`` applied (a copy)."""
        table = dict(base)
        for day, names in self._skip.items():
            if day.year == year and day in table:
                kept = _without(table[day], names)
                if kept:
                    table[day] = kept
                else:
                    del table[day]
        for day, name in self._extra.items():
            if day.year == year:
                table[day] = (*table.get(day, ()), Holiday((name,), EXTRA))
        return MappingProxyType(dict(sorted(table.items())))

    def on(self, day: date) -> tuple[Holiday, ...]:
        """The holidays on ``day`` (empty on an ordinary day)."""
        return self.year(day.year).get(day, ())

    def name_on(self, day: date) -> str | None:
        """The labels of the holidays on ``day`` ("A; B (catholic)" when several), or None on an ordinary day."""
        found = self.on(day)
        return "; ".join(h.label for h in found) if found else None

    def __repr__(self) -> str:
        where = self.country if self.subdivision is None else f"{self.country}-{self.subdivision}"
        return f"HolidayCalendar({where}, {'+'.join(self.categories)})"
