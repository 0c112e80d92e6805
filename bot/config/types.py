"""Building blocks of the config models: the strict base model, durations, clock times, conditions, names."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict

from bot.core.conditions import Condition, parse_condition
from bot.core.durations import parse_duration

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]
_WORKWEEK: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
_BLOCKING: tuple[Severity, ...] = ("CRITICAL",)
ChecklistItem = Literal[
    "unit", "integration", "performance", "vulnerability_scan", "release_notes", "rollback_plan", "images"
]
SLACK_ID = re.compile(r"^[USWB][A-Z0-9]{2,}$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


def _condition(value: Any) -> Any:
    if isinstance(value, str):
        return parse_condition(value)
    return value


def _hhmm(value: Any) -> Any:
    if isinstance(value, str):
        if not re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
            raise ValueError(f"bad time {value!r}: use HH:MM, e.g. 09:00")
        hours, minutes = (int(x) for x in value.strip().split(":"))
        return time(hours, minutes)
    if isinstance(value, int):  # YAML 1.1 reads 09:00 unquoted as sexagesimal minutes
        return time(value // 60, value % 60)
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
ConditionField = Annotated[Condition, BeforeValidator(_condition)]
ClockTime = Annotated[time, BeforeValidator(_hhmm)]


class Model(BaseModel):
    """Base: unknown keys are errors, models are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, use_attribute_docstrings=True)
