"""Running a check end to end: measure with retries, then judge — the only path from a backend to a verdict.

A MeasureError is an ERROR *attempt*: it is reported through ``on_error`` (so the thread can show it),
retried ``retries`` times with ``delay`` between attempts, and then the check ends INCONCLUSIVE
"metrics unavailable". A backend that cannot be read therefore never yields FAIL, and never an
automatic rollback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from types import TracebackType

import aiohttp

from bot.config import Check, Metrics
from bot.core.verdicts import Measurement, attempt_error, failed, judge, render_query, unavailable
from bot.http_auth import Credentials
from bot.http_session import HttpSession
from bot.metrics.base import CheckFailed, MeasureError, Measurer
from bot.metrics.http_check import HttpChecker
from bot.metrics.loki import LokiClient
from bot.metrics.prometheus import PrometheusClient

__all__ = ["CheckRunner", "measure_with_retries"]

Sleep = Callable[[float], Awaitable[object]]
OnError = Callable[[Measurement], Awaitable[None]]


async def measure_with_retries(
    measurer: Measurer,
    check: Check,
    at: datetime,
    *,
    service: str,
    environment: str,
    version: str,
    retries: int,
    delay: timedelta,
    sleep: Sleep = asyncio.sleep,
    on_error: OnError | None = None,
) -> Measurement:
    """Measure ``check`` (up to ``1 + retries`` attempts) and judge it; never raises MeasureError."""
    template = next(t for t in (check.prometheus, check.loki, check.http) if t is not None)  # the validator: one
    query = render_query(template, service, environment, version)
    attempts = 1 + retries
    for attempt in range(1, attempts + 1):
        try:
            value = await measurer.measure(check, at, service=service, environment=environment, version=version)
        except CheckFailed as exc:
            return failed(check, str(exc), query=query, attempts=attempt)
        except MeasureError as exc:
            if on_error is not None:
                await on_error(attempt_error(check, str(exc), query=query, attempt=attempt, of=attempts))
            if not exc.retryable or attempt == attempts:
                return unavailable(check, str(exc), query=query, attempts=attempt)
            await sleep(delay.total_seconds())
            continue
        return replace(judge(check, value, query=query), attempts=attempt)
    raise AssertionError("unreachable: the loop returns on its last attempt")


class CheckRunner:
    """Runs any configured check against the right backend with the configured timeout and retries.

    ``credentials`` resolves ``metrics.prometheus_auth`` and ``metrics.loki_auth`` here (CredentialsError when a
    variable is missing) and each HTTP check's ``auth`` on use; default: the process environment.
    """

    def __init__(
        self,
        metrics: Metrics,
        *,
        session: HttpSession | aiohttp.ClientSession | None = None,
        sleep: Sleep = asyncio.sleep,
        credentials: Credentials | None = None,
    ) -> None:
        timeout = metrics.timeout.total_seconds()
        credentials = credentials or Credentials()
        self.metrics = metrics
        self.prometheus = PrometheusClient(
            metrics.prometheus_url, timeout=timeout, session=session, auth=credentials.resolve(metrics.prometheus_auth)
        )
        self.http = HttpChecker(timeout=timeout, session=session, credentials=credentials)
        self.loki: Measurer = _NoLoki()
        if metrics.loki_url is not None:
            self.loki = LokiClient(
                metrics.loki_url, timeout=timeout, session=session, auth=credentials.resolve(metrics.loki_auth)
            )
        self.sleep = sleep  # the pause between attempts (tests replace it); compare checks pause with it too

    async def __aenter__(self) -> CheckRunner:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the sessions the backends opened."""
        await self.prometheus.close()
        await self.http.close()
        if isinstance(self.loki, LokiClient):
            await self.loki.close()

    async def run(
        self,
        check: Check,
        at: datetime,
        *,
        service: str,
        environment: str,
        version: str,
        on_error: OnError | None = None,
    ) -> Measurement:
        """Measure and judge ``check`` as of ``at`` (for prometheus: release time + the check's offset)."""
        measurer: Measurer = self.prometheus if check.prometheus is not None else self.http
        if check.loki is not None:
            measurer = self.loki
        return await measure_with_retries(
            measurer,
            check,
            at,
            service=service,
            environment=environment,
            version=version,
            retries=self.metrics.retries,
            delay=self.metrics.retry_delay,
            sleep=self.sleep,
            on_error=on_error,
        )


class _NoLoki:
    """The Loki backend of a runner whose ``metrics.loki_url`` is unset: the config loader refuses a loki check
    then, so only a runner built by hand meets this — its loki checks end INCONCLUSIVE, saying why."""

    async def measure(
        self, check: Check, at: datetime, *, service: str, environment: str, version: str
    ) -> float | None:
        raise MeasureError("metrics.loki_url is not set: no Loki to read", retryable=False)
