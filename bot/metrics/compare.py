"""``compare: canary_to_stable``: one query run for the canary and for the stable, judged on their ratio.

Each side is read with the runner's retries, as any check is; a side that cannot be read ends the check
INCONCLUSIVE "metrics unavailable" (never a FAIL), naming the side. The two values and the ratio are
judged by :func:`bot.core.verdicts.judge_ratio` (its ``min_value`` floor included).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.config import Check
from bot.core.verdicts import Measurement, attempt_error, fill_sides, judge_ratio, render_query, unavailable
from bot.metrics.base import MeasureError
from bot.metrics.run import CheckRunner, OnError

__all__ = ["measure_compare"]

_Read = Callable[[int], Awaitable[float | None]]  # one attempt (numbered from 1) at reading one side


class _Unreadable(Exception):
    def __init__(self, measurement: Measurement) -> None:
        super().__init__(measurement.summary)
        self.measurement = measurement


async def measure_compare(
    runner: CheckRunner,
    check: Check,
    at: datetime,
    *,
    service: str,
    environment: str,
    version: str,
    sides: tuple[str, str],
    on_error: OnError | None = None,
) -> Measurement:
    """Measure ``check`` for the canary and for the stable (``sides``: what ``{canary}`` is for each) as of
    ``at``, and judge ``canary / stable``; never raises MeasureError."""
    assert check.prometheus is not None  # noqa: S101 - Check's validator: compare needs a prometheus query
    canary, stable = sides
    side_checks = [
        check.model_copy(update={"prometheus": fill_sides(check.prometheus, side=side, stable=stable)})
        for side in (canary, stable)
    ]
    queries = [render_query(c.prometheus or "", service, environment, version) for c in side_checks]
    shown = f"canary: {queries[0]} | stable: {queries[1]}"
    attempts = 1 + runner.metrics.retries
    values: list[float | None] = []
    try:
        for label, side_check in zip(("canary", "stable"), side_checks, strict=True):

            async def read(attempt: int, side_check: Check = side_check, label: str = label) -> float | None:
                try:
                    return await runner.prometheus.measure(
                        side_check, at, service=service, environment=environment, version=version
                    )
                except MeasureError as exc:
                    error = f"{label}: {exc}"
                    if on_error is not None:
                        await on_error(attempt_error(check, error, query=shown, attempt=attempt, of=attempts))
                    if not exc.retryable or attempt == attempts:
                        raise _Unreadable(unavailable(check, error, query=shown, attempts=attempt)) from None
                    raise

            values.append(await _with_retries(runner, read, attempts))
    except _Unreadable as gave_up:
        return gave_up.measurement
    return judge_ratio(check, values[0], values[1], query=shown)


async def _with_retries(runner: CheckRunner, read: _Read, attempts: int) -> float | None:
    for attempt in range(1, attempts + 1):
        try:
            return await read(attempt)
        except MeasureError:
            await runner.sleep(runner.metrics.retry_delay.total_seconds())  # the runner's pause between attempts
    raise AssertionError("unreachable: the last attempt raises _Unreadable")
