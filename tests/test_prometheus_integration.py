"""Post-release checks against a REAL Prometheus scraping an exporter the test controls (1 s scrapes).

Skipped where the binary is absent, unless ``CI=true``: then a missing binary fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from bot.config import Check, Metrics
from bot.core.verdicts import Measurement, Verdict
from bot.metrics.run import CheckRunner
from tests.prometheus_harness import PrometheusStack as Stack
from tests.prometheus_harness import prometheus_stack

pytestmark = [pytest.mark.prometheus, pytest.mark.asyncio(loop_scope="module")]

# The spec's error-rate query with a window short enough to fill after a few 1 s scrapes.
ERROR_RATE = (
    'sum(rate(http_requests_total{service="{service}",code=~"5.."}[10s]))'
    ' / sum(rate(http_requests_total{service="{service}"}[10s]))'
)


def error_rate_check(**extra: object) -> Check:
    return Check.model_validate(
        {"name": "error rate", "prometheus": ERROR_RATE, "pass_if": "< 0.01", "fail_if": ">= 0.05", **extra}
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack() -> AsyncIterator[Stack]:
    rates = [("notify", "200", 199), ("notify", "500", 1)]  # 0.5 % errors
    rates += [("billing", "200", 90), ("billing", "503", 10)]  # 10 % errors
    rates += [("idle", "200", 0), ("idle", "500", 0)]  # no traffic: 0 / 0 = NaN
    async with prometheus_stack(rates) as running:
        yield running


async def run(stack: Stack, check: Check, service: str, **metrics: object) -> Measurement:
    config = Metrics.model_validate({"prometheus_url": stack.prometheus.url, "timeout": "5s", **metrics})
    async with CheckRunner(config) as runner:
        return await runner.run(check, datetime.now(UTC), service=service, environment="prod", version="1.4.2")


async def test_low_error_ratio_passes(stack: Stack) -> None:
    result = await run(stack, error_rate_check(), "notify")

    assert result.verdict is Verdict.PASS, result.text()
    assert result.value == pytest.approx(0.005, rel=0.2)
    assert result.summary.startswith("error rate = 0.005")
    assert result.summary.endswith("(pass if < 0.01, fail if >= 0.05)")
    # The message carries the query that produced the value, with the label braces intact.
    assert result.query is not None and 'http_requests_total{service="notify",code=~"5.."}[10s]' in result.query


async def test_high_error_ratio_fails(stack: Stack) -> None:
    result = await run(stack, error_rate_check(), "billing")

    assert result.verdict is Verdict.FAIL, result.text()
    assert result.value == pytest.approx(0.1, rel=0.2)
    assert "billing" in (result.query or "")


async def test_no_series_is_inconclusive(stack: Stack) -> None:
    result = await run(stack, error_rate_check(), "ghost")

    assert result.verdict is Verdict.INCONCLUSIVE, result.text()
    assert result.value is None
    assert "no data" in result.summary
    assert result.detail == "empty result; on_empty: inconclusive"


async def test_no_series_follows_on_empty(stack: Stack) -> None:
    result = await run(stack, error_rate_check(on_empty="fail"), "ghost")

    assert result.verdict is Verdict.FAIL


async def test_zero_over_zero_is_nan_and_inconclusive(stack: Stack) -> None:
    result = await run(stack, error_rate_check(), "idle")

    assert result.verdict is Verdict.INCONCLUSIVE, result.text()
    assert result.summary == "error rate = NaN (pass if < 0.01, fail if >= 0.05)"


async def test_query_prometheus_rejects_ends_inconclusive_without_retrying(stack: Stack) -> None:
    check = Check.model_validate({"name": "broken", "prometheus": "sum(rate(x[5m])", "pass_if": "< 1"})
    result = await run(stack, check, "notify")

    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.summary.startswith("metrics unavailable: Prometheus query error (bad_data, HTTP 400)")
    assert result.attempts == 1


async def test_prometheus_stopped_is_error_then_inconclusive_never_fail() -> None:
    # A private exporter and Prometheus: stopping the shared one would break the other tests, and a
    # shared exporter would count the other server's scrapes too.
    async with prometheus_stack([("billing", "200", 90), ("billing", "503", 10)]) as private_stack:
        private = private_stack.prometheus
        config = Metrics.model_validate(
            {"prometheus_url": private.url, "timeout": "2s", "retries": 2, "retry_delay": "2s"}
        )
        errors: list[Measurement] = []
        sleeps: list[float] = []

        async def record_error(measurement: Measurement) -> None:
            errors.append(measurement)

        async def no_wait(seconds: float) -> None:
            sleeps.append(seconds)

        # billing is failing: while Prometheus is up the same check says FAIL.
        async with CheckRunner(config, sleep=no_wait) as runner:
            before = await runner.run(
                error_rate_check(), datetime.now(UTC), service="billing", environment="prod", version="1.4.2"
            )
            await private.stop()
            after = await runner.run(
                error_rate_check(),
                datetime.now(UTC),
                service="billing",
                environment="prod",
                version="1.4.2",
                on_error=record_error,
            )

    assert before.verdict is Verdict.FAIL
    assert [e.verdict for e in errors] == [Verdict.ERROR] * 3
    assert all("cannot connect to Prometheus" in e.summary for e in errors)
    assert sleeps == [timedelta(seconds=2).total_seconds()] * 2
    assert after.verdict is Verdict.INCONCLUSIVE
    assert after.summary.startswith(f"metrics unavailable: cannot connect to Prometheus at {private.url}")
    assert after.attempts == 3
    assert after.value is None
