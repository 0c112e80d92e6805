"""A small Loki HTTP API client: LogQL metric queries evaluated at one instant (``GET /loki/api/v1/query``).

A check needs exactly one number, so :meth:`LokiClient.measure` reads it as the Prometheus client does:

- ``vector`` (what a metric query such as ``sum(count_over_time({app="notify"} |= "ERROR" [5m]))`` returns):
  no series is an *empty* result (``on_empty``); one series is the value; several are refused without
  retrying — the query must aggregate them with ``sum()``/``max()``, since picking one would make the verdict
  arbitrary. ``scalar`` (a literal such as ``1 + 1``) is its value.
- ``streams`` (log lines: the query has no metric function) is refused without retrying, with the fix:
  wrap it in ``count_over_time(...[5m])``. Counting the returned lines instead would judge Loki's ``limit``
  (100 by default) rather than the logs: a flood of errors would read as 100.
- ``matrix`` (a range result, which the instant API does not document but proxies may return) is refused
  without retrying, as the Prometheus client refuses one.
- Loki answers a query it cannot run with HTTP 400 and a plain-text body (``parse error at line 1, col 5:
  …``): not retried, the body is shown. ``{"status": "error", "errorType", "error"}`` (what a
  Prometheus-compatible proxy in front of Loki answers) is read like Prometheus's: ``bad_data`` is not
  retried, anything else is.
- 5xx, 429, a timeout or a connection error is a :class:`MeasureError` that is retried, then INCONCLUSIVE
  "metrics unavailable" — never FAIL.
- 401/403: not retried, and the body is not shown (an answer about credentials is the one most likely to
  quote them). ``metrics.loki_auth`` (a bearer token, basic auth, ``X-Scope-OrgID`` from an environment
  variable, a CA bundle) is sent with every query.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.config import Check
from bot.metrics.base import MeasureError
from bot.metrics.instant import BODY_HEAD, InstantQueryClient, Series, query_error, success_series

__all__ = ["LokiClient", "Series"]

# Loki's own words when an instant query is a log query (newer releases answer 400 rather than streams).
_LOG_QUERY_REFUSED = "log queries are not supported as an instant query type"
_USE_METRIC_QUERY = (
    "a log query returns log lines, not a number: use a metric query such as "
    'sum(count_over_time({app="{service}"} |= "ERROR" [5m]))'
)


class LokiClient(InstantQueryClient):
    """Instant LogQL queries against ``base_url`` (e.g. ``http://127.0.0.1:3100``); implements Measurer."""

    backend = "Loki"
    auth_key = "metrics.loki_auth"

    async def _send(self, query: str, at: datetime) -> tuple[int, str]:
        # An integer epoch is read as nanoseconds by Loki; whole microseconds avoid float rounding noise.
        nanoseconds = round(at.timestamp() * 1_000_000) * 1_000
        return await self._request("GET", "/loki/api/v1/query", params={"query": query, "time": str(nanoseconds)})

    def _template(self, check: Check) -> str | None:
        return check.loki

    def _parse(self, status: int, text: str) -> list[Series]:
        head = text[:BODY_HEAD].strip()
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = None
        error = query_error("Loki", body, status)
        if error is not None:
            raise error
        if status == 400:
            # Loki's query errors are plain text; a query it cannot parse or run fails the same way next time.
            if _LOG_QUERY_REFUSED in text:
                raise MeasureError(f"Loki refused the query (HTTP 400): {_USE_METRIC_QUERY}", retryable=False)
            raise MeasureError(f"Loki refused the query (HTTP 400): {head}", retryable=False)
        if not 200 <= status < 300:
            raise MeasureError(f"Loki answered HTTP {status}: {head}")
        if body is None:
            raise MeasureError(f"Loki answered malformed JSON: {head}")
        kind, series = success_series("Loki", body, head)
        if series is not None:
            return series
        if kind == "streams":
            raise MeasureError(f"query returned log lines (streams): {_USE_METRIC_QUERY}", retryable=False)
        raise MeasureError(
            f"query returned a {kind} result; checks need an instant vector or a scalar (a metric query evaluated "
            "at one instant, such as sum(count_over_time(...[5m])))",
            retryable=False,
        )
