"""A small Prometheus HTTP API client: instant queries evaluated at a given time.

One number per check, credentials, refusals and errors as every instant-query client reads them
(bot/metrics/instant.py). A Prometheus behind a login (Thanos, Mimir, Grafana Cloud) gets the headers and TLS
trust of ``metrics.prometheus_auth`` with every query.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.config import Check
from bot.metrics.base import MeasureError
from bot.metrics.instant import BODY_HEAD, InstantQueryClient, Series, query_error, success_series

__all__ = ["PrometheusClient", "Series"]


class PrometheusClient(InstantQueryClient):
    """Instant queries against ``base_url`` (e.g. ``http://127.0.0.1:9090``); implements Measurer."""

    backend = "Prometheus"
    auth_key = "metrics.prometheus_auth"

    async def _send(self, query: str, at: datetime) -> tuple[int, str]:
        # POST form: Prometheus accepts it like GET, and long queries do not hit URL length limits.
        form = {"query": query, "time": f"{at.timestamp():.3f}", "timeout": f"{self.timeout:g}s"}
        return await self._request("POST", "/api/v1/query", data=form)

    def _template(self, check: Check) -> str | None:
        return check.prometheus

    def _parse(self, status: int, text: str) -> list[Series]:
        head = text[:BODY_HEAD]
        try:
            body: Any = json.loads(text)
        except ValueError:
            if not 200 <= status < 300:
                raise MeasureError(f"Prometheus answered HTTP {status}: {head}") from None
            raise MeasureError(f"Prometheus answered malformed JSON: {head}") from None
        error = query_error("Prometheus", body, status)
        if error is not None:
            raise error
        if not 200 <= status < 300:
            raise MeasureError(f"Prometheus answered HTTP {status}: {head}")
        kind, series = success_series("Prometheus", body, head)
        if series is not None:
            return series
        raise MeasureError(
            f"query returned a {kind} result; checks need an instant vector or a scalar "
            "(drop the [range] selector or wrap it in a function such as rate())",
            retryable=False,
        )
