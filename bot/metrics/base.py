"""What every metrics back-end (Prometheus, HTTP checks) promises, and the errors it may raise."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bot.config import Check

__all__ = ["CheckFailed", "MeasureError", "Measurer"]


class MeasureError(Exception):
    """The backend could not be read: connection error, timeout, non-2xx, ``status: error``, bad shape.

    The message says which. ``retryable`` is False when asking again cannot help (a query Prometheus
    rejects as bad, a result with several series): the check then ends INCONCLUSIVE at once.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class CheckFailed(Exception):
    """The backend answered and the answer itself is a failure (an endpoint returning the wrong status).

    Unlike :class:`MeasureError` this is a real FAIL: the service was reached and is unhealthy.
    """


class Measurer(Protocol):
    """Reads the single value a check judges; None means an empty result."""

    async def measure(
        self, check: Check, at: datetime, *, service: str, environment: str, version: str
    ) -> float | None:
        """Measure ``check`` as of ``at``; raise MeasureError or CheckFailed."""
        ...
