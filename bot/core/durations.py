"""Durations as people write them in config and commands: ``90s``, ``5m``, ``1h30m``, ``2d``."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w))+$")
_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


def parse_duration(text: str) -> timedelta:
    """Parse ``5m``, ``1h30m``, ``10s``; raise ValueError with a helpful message otherwise."""
    cleaned = text.strip().lower().replace(" ", "")
    if not _WHOLE.match(cleaned):
        raise ValueError(f"bad duration {text!r}: use a number and a unit, e.g. 30s, 5m, 1h30m, 2d")
    total = timedelta()
    for amount, unit in _PART.findall(cleaned):
        total += int(amount) * _UNITS[unit]
    return total


def format_duration(value: timedelta) -> str:
    """Render a duration compactly (``1h30m``, ``45s``); the inverse of :func:`parse_duration`."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)
