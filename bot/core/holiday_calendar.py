"""Public holidays for one country/subdivision, built once per year and reused.

A thin wrapper over the ``holidays`` package (pure data, no I/O). Every public holiday the package gives
for the country/subdivision in its default categories counts, including the "(observed)" days it adds
when a holiday falls on a weekend. A day may carry several names; ``holidays`` joins them with "; " and
they are kept that way.

Names are in English whatever the process locale (``holidays`` otherwise reads LANGUAGE/LC_ALL/LANG):
the country's own English variant when it has one (en_CA "Labour Day", en_GB, en_AU, en_IN), else
en_US, else the country's default language when it offers no English at all.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from types import MappingProxyType

import holidays


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


@lru_cache(maxsize=512)
def holidays_for_year(country: str, subdivision: str | None, year: int) -> Mapping[date, str]:
    """The holidays of one year as a read-only ``date -> name`` mapping (cached per key).

    ``holidays`` warns when a year is outside the range a country's data covers (e.g. India after
    2035); such a year then carries only the holidays the package knows, and the warning is not
    raised to callers, who ask about arbitrary future instants when searching for the next opening.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = holidays.country_holidays(
            country,
            subdiv=subdivision,
            observed=True,
            years=year,
            language=holiday_language(country, subdivision),
        )
    return MappingProxyType(dict(table.items()))


class HolidayCalendar:
    """The public-holiday calendar of a country (ISO 3166-1 alpha-2) and optional subdivision.

    For the United Kingdom use country ``GB`` with a subdivision such as ``ENG``.
    """

    __slots__ = ("country", "subdivision", "_years")

    def __init__(self, country: str, subdivision: str | None = None) -> None:
        self.country = country
        self.subdivision = subdivision
        # A per-instance view of the shared per-year cache: one dict lookup on the hot path.
        self._years: dict[int, Mapping[date, str]] = {}

    def year(self, year: int) -> Mapping[date, str]:
        """Every holiday of ``year`` as ``date -> name``."""
        table = self._years.get(year)
        if table is None:
            table = holidays_for_year(self.country, self.subdivision, year)
            self._years[year] = table
        return table

    def name_on(self, day: date) -> str | None:
        """The holiday name(s) on ``day`` ("A; B" when several), or None on an ordinary day."""
        return self.year(day.year).get(day)

    def __repr__(self) -> str:
        where = self.country if self.subdivision is None else f"{self.country}-{self.subdivision}"
        return f"HolidayCalendar({where})"
