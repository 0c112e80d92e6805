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
from types import TracebackType
from typing import Any

import aiohttp

from bot.config import Check
from bot.core.verdicts import render_query
from bot.http_auth import NO_AUTH, RequestAuth
from bot.http_session import HttpSession
from bot.metrics.base import MeasureError

__all__ = ["LokiClient", "Series"]

Series = tuple[dict[str, str], float]
_BODY_HEAD = 200
_REFUSED = (401, 403)
# Loki's own words when an instant query is a log query (newer releases answer 400 rather than streams).
_LOG_QUERY_REFUSED = "log queries are not supported as an instant query type"
_USE_METRIC_QUERY = (
    "a log query returns log lines, not a number: use a metric query such as "
    'sum(count_over_time({app="{service}"} |= "ERROR" [5m]))'
)


class LokiClient:
    """Instant LogQL queries against ``base_url`` (e.g. ``http://127.0.0.1:3100``); implements Measurer.

    ``session`` and ``auth`` as for :class:`~bot.metrics.prometheus.PrometheusClient`: the runtime's shared
    session (closed by its owner) or, without one, the client's own; ``auth`` is the resolved
    ``metrics.loki_auth``, sent with every query.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        session: HttpSession | aiohttp.ClientSession | None = None,
        auth: RequestAuth = NO_AUTH,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.auth = auth
        self._http = HttpSession.of(session)

    async def __aenter__(self) -> LokiClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client opened it."""
        await self._http.release()

    async def instant_query(self, query: str, at: datetime) -> list[Series]:
        """Evaluate ``query`` at ``at`` (timezone-aware); return (labels, value) per series."""
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        url = f"{self.base_url}/loki/api/v1/query"
        # An integer epoch is read as nanoseconds by Loki; whole microseconds avoid float rounding noise.
        nanoseconds = round(at.timestamp() * 1_000_000) * 1_000
        params = {"query": query, "time": str(nanoseconds)}
        session = self._http.get()
        try:
            async with session.get(
                url,
                params=params,
                headers=self.auth.headers,
                ssl=self.auth.ssl,
                allow_redirects=self.auth.follow_redirects,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                text = await response.text(errors="replace")
                status = response.status
        except TimeoutError:
            raise MeasureError(f"Loki at {self.base_url} timed out after {self.timeout:g}s") from None
        except aiohttp.ClientConnectionError as exc:
            raise MeasureError(f"cannot connect to Loki at {self.base_url}: {exc}") from None
        except aiohttp.ClientError as exc:
            raise MeasureError(f"request to Loki at {self.base_url} failed: {exc}") from None
        if status in _REFUSED:
            raise MeasureError(
                f"Loki at {self.base_url} answered HTTP {status}: credentials refused or missing "
                "(see metrics.loki_auth)",
                retryable=False,
            )
        return _parse(status, text)

    async def measure(
        self, check: Check, at: datetime, *, service: str, environment: str, version: str
    ) -> float | None:
        """The check's single value at ``at``; None when the query returned no series."""
        if check.loki is None:
            raise ValueError(f"check {check.name!r} is not a loki check")
        query = render_query(check.loki, service, environment, version)
        series = await self.instant_query(query, at)
        if not series:
            return None
        if len(series) > 1:
            raise MeasureError(
                f"query returned {len(series)} series; aggregate it to one with sum(), max() or avg()",
                retryable=False,
            )
        return series[0][1]


def _parse(status: int, text: str) -> list[Series]:
    head = text[:_BODY_HEAD].strip()
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("status") == "error":
        error_type = body.get("errorType", "unknown")
        raise MeasureError(
            f"Loki query error ({error_type}, HTTP {status}): {body.get('error', '')}",
            retryable=error_type != "bad_data",
        )
    if status == 400:
        # Loki's query errors are plain text; a query it cannot parse or run fails the same way next time.
        if _LOG_QUERY_REFUSED in text:
            raise MeasureError(f"Loki refused the query (HTTP 400): {_USE_METRIC_QUERY}", retryable=False)
        raise MeasureError(f"Loki refused the query (HTTP 400): {head}", retryable=False)
    if not 200 <= status < 300:
        raise MeasureError(f"Loki answered HTTP {status}: {head}")
    if body is None:
        raise MeasureError(f"Loki answered malformed JSON: {head}")
    try:
        if body["status"] != "success":
            raise MeasureError(f"Loki answered status {body['status']!r}: {head}")
        data = body["data"]
        kind = data["resultType"]
        result = data["result"]
        if kind == "scalar":
            return [({}, float(result[1]))]
        if kind == "vector":
            return [(dict(item["metric"]), float(item["value"][1])) for item in result]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise MeasureError(f"unexpected Loki response shape ({exc!r}): {head}") from None
    if kind == "streams":
        raise MeasureError(f"query returned log lines (streams): {_USE_METRIC_QUERY}", retryable=False)
    raise MeasureError(
        f"query returned a {kind} result; checks need an instant vector or a scalar (a metric query evaluated "
        "at one instant, such as sum(count_over_time(...[5m])))",
        retryable=False,
    )
