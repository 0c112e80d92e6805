"""A small Prometheus HTTP API client: instant queries evaluated at a given time.

A check needs exactly one number, so :meth:`PrometheusClient.measure` accepts a scalar or an instant
vector with at most one series. Zero series is an *empty* result (judged by ``on_empty``); several
series is refused without retrying — the query must aggregate them (``sum(...)``, ``max(...)``), since
picking one series at random would make the verdict arbitrary.

A Prometheus behind a login (Thanos, Mimir, Grafana Cloud) gets the headers and TLS trust of
``metrics.prometheus_auth`` with every query. A 401 or 403 is not retried (the same credentials are refused
again) and its body is not shown: an answer about credentials is the one most likely to quote them.
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

__all__ = ["PrometheusClient", "Series"]

Series = tuple[dict[str, str], float]
_BODY_HEAD = 200
_REFUSED = (401, 403)


class PrometheusClient:
    """Instant queries against ``base_url`` (e.g. ``http://127.0.0.1:9090``); implements Measurer.

    ``session``: the runtime's shared :class:`HttpSession` (or an open aiohttp session) — the caller
    closes it. Without one the client opens its own on first use and :meth:`close` (or ``async with``)
    closes it, for use on its own. ``auth``: the resolved ``metrics.prometheus_auth``, sent with every query.
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

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client opened it."""
        await self._http.release()

    async def instant_query(self, query: str, at: datetime) -> list[Series]:
        """Evaluate ``query`` at ``at`` (timezone-aware); return (labels, value) per series.

        A scalar result is one series with no labels. Values keep Prometheus's NaN and ±Inf.
        """
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        url = f"{self.base_url}/api/v1/query"
        # POST form: Prometheus accepts it like GET, and long queries do not hit URL length limits.
        form = {"query": query, "time": f"{at.timestamp():.3f}", "timeout": f"{self.timeout:g}s"}
        session = self._http.get()
        try:
            async with session.post(
                url,
                data=form,
                headers=self.auth.headers,
                ssl=self.auth.ssl,
                allow_redirects=self.auth.follow_redirects,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                text = await response.text(errors="replace")
                status = response.status
        except TimeoutError:
            raise MeasureError(f"Prometheus at {self.base_url} timed out after {self.timeout:g}s") from None
        except aiohttp.ClientConnectionError as exc:
            raise MeasureError(f"cannot connect to Prometheus at {self.base_url}: {exc}") from None
        except aiohttp.ClientError as exc:
            raise MeasureError(f"request to Prometheus at {self.base_url} failed: {exc}") from None
        if status in _REFUSED:
            raise MeasureError(
                f"Prometheus at {self.base_url} answered HTTP {status}: credentials refused or missing "
                "(see metrics.prometheus_auth)",
                retryable=False,
            )
        return _parse(status, text)

    async def measure(
        self, check: Check, at: datetime, *, service: str, environment: str, version: str
    ) -> float | None:
        """The check's single value at ``at``; None when the query returned no series."""
        if check.prometheus is None:
            raise ValueError(f"check {check.name!r} is not a prometheus check")
        query = render_query(check.prometheus, service, environment, version)
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
    head = text[:_BODY_HEAD]
    try:
        body: Any = json.loads(text)
    except ValueError:
        if not 200 <= status < 300:
            raise MeasureError(f"Prometheus answered HTTP {status}: {head}") from None
        raise MeasureError(f"Prometheus answered malformed JSON: {head}") from None
    if isinstance(body, dict) and body.get("status") == "error":
        error_type = body.get("errorType", "unknown")
        # bad_data is a query Prometheus cannot parse or evaluate: asking again gives the same answer.
        raise MeasureError(
            f"Prometheus query error ({error_type}, HTTP {status}): {body.get('error', '')}",
            retryable=error_type != "bad_data",
        )
    if not 200 <= status < 300:
        raise MeasureError(f"Prometheus answered HTTP {status}: {head}")
    try:
        data = body["data"]
        kind = data["resultType"]
        result = data["result"]
        if body["status"] != "success":
            raise MeasureError(f"Prometheus answered status {body['status']!r}: {head}")
        if kind == "scalar":
            return [({}, float(result[1]))]
        if kind == "vector":
            return [(dict(item["metric"]), float(item["value"][1])) for item in result]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise MeasureError(f"unexpected Prometheus response shape ({exc!r}): {head}") from None
    raise MeasureError(
        f"query returned a {kind} result; checks need an instant vector or a scalar "
        "(drop the [range] selector or wrap it in a function such as rate())",
        retryable=False,
    )
