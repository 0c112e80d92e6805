"""What the Prometheus and Loki clients share: an instant query over HTTP that must come back as one number.

A check needs exactly one number, so :meth:`InstantQueryClient.measure` accepts a scalar or an instant vector
with at most one series. Zero series is an *empty* result (judged by ``on_empty``); several series is refused
without retrying — the query must aggregate them (``sum(...)``, ``max(...)``), since picking one series at random
would make the verdict arbitrary.

A backend behind a login gets the headers and TLS trust of its ``auth`` block with every query. A 401 or 403 is not
retried (the same credentials are refused again) and its body is not shown: an answer about credentials is the one
most likely to quote them. A timeout or a connection error is retried by the caller, then reads "metrics
unavailable" — never FAIL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar, Self

import aiohttp

from bot.config import Check
from bot.core.verdicts import render_query
from bot.http_auth import NO_AUTH, RequestAuth
from bot.http_session import HttpSession
from bot.metrics.base import MeasureError

Series = tuple[dict[str, str], float]
BODY_HEAD = 200  # how much of an unexpected answer an error message quotes
_REFUSED = (401, 403)


class InstantQueryClient(ABC):
    """Instant queries against ``base_url``; implements Measurer. A subclass names its backend and says how one
    query is sent (:meth:`_send`), which query of a check is its own (:meth:`_template`) and how an answer is read
    (:meth:`_parse`).

    ``session``: the runtime's shared :class:`HttpSession` (or an open aiohttp session) — the caller closes it.
    Without one the client opens its own on first use and :meth:`close` (or ``async with``) closes it, for use on
    its own. ``auth``: the resolved credentials of the backend, sent with every query.
    """

    backend: ClassVar[str]  # how messages name the backend: "Prometheus", "Loki"
    auth_key: ClassVar[str]  # the config key of its credentials, named when they are refused

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

    async def __aenter__(self) -> Self:
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

        A scalar result is one series with no labels. Values keep NaN and ±Inf.
        """
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        try:
            status, text = await self._send(query, at)
        except TimeoutError:
            raise MeasureError(f"{self.backend} at {self.base_url} timed out after {self.timeout:g}s") from None
        except aiohttp.ClientConnectionError as exc:
            raise MeasureError(f"cannot connect to {self.backend} at {self.base_url}: {exc}") from None
        except aiohttp.ClientError as exc:
            raise MeasureError(f"request to {self.backend} at {self.base_url} failed: {exc}") from None
        if status in _REFUSED:
            raise MeasureError(
                f"{self.backend} at {self.base_url} answered HTTP {status}: credentials refused or missing "
                f"(see {self.auth_key})",
                retryable=False,
            )
        return self._parse(status, text)

    async def measure(
        self, check: Check, at: datetime, *, service: str, environment: str, version: str
    ) -> float | None:
        """The check's single value at ``at``; None when the query returned no series."""
        template = self._template(check)
        if template is None:
            raise ValueError(f"check {check.name!r} is not a {self.backend.lower()} check")
        series = await self.instant_query(render_query(template, service, environment, version), at)
        if not series:
            return None
        if len(series) > 1:
            raise MeasureError(
                f"query returned {len(series)} series; aggregate it to one with sum(), max() or avg()",
                retryable=False,
            )
        return series[0][1]

    async def _request(self, method: str, path: str, **kwargs: Any) -> tuple[int, str]:
        """One request to the backend with its credentials: the status and the body's text."""
        async with self._http.get().request(
            method,
            f"{self.base_url}{path}",
            headers=self.auth.headers,
            ssl=self.auth.ssl,
            allow_redirects=self.auth.follow_redirects,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            **kwargs,
        ) as response:
            return response.status, await response.text(errors="replace")

    @abstractmethod
    async def _send(self, query: str, at: datetime) -> tuple[int, str]:
        """Send ``query`` evaluated at ``at`` the backend's way (through :meth:`_request`): status and body."""

    @abstractmethod
    def _template(self, check: Check) -> str | None:
        """The check's query in this backend's language, or None when the check is not this backend's."""

    @abstractmethod
    def _parse(self, status: int, text: str) -> list[Series]:
        """An answer's series, or a MeasureError saying what was wrong with it."""


def query_error(backend: str, body: Any, status: int) -> MeasureError | None:
    """The error of a ``{"status": "error", "errorType", "error"}`` answer, if it is one. ``bad_data`` is a query
    the backend cannot parse or evaluate: asking again gives the same answer, so it is not retried."""
    if not (isinstance(body, dict) and body.get("status") == "error"):
        return None
    error_type = body.get("errorType", "unknown")
    return MeasureError(
        f"{backend} query error ({error_type}, HTTP {status}): {body.get('error', '')}",
        retryable=error_type != "bad_data",
    )


def success_series(backend: str, body: Any, head: str) -> tuple[str, list[Series] | None]:
    """A success answer's result type and, for a scalar or an instant vector, its series (None for other types,
    which the caller refuses in its own words)."""
    try:
        data = body["data"]
        kind = data["resultType"]
        result = data["result"]
        if body["status"] != "success":
            raise MeasureError(f"{backend} answered status {body['status']!r}: {head}")
        if kind == "scalar":
            return kind, [({}, float(result[1]))]
        if kind == "vector":
            return kind, [(dict(item["metric"]), float(item["value"][1])) for item in result]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise MeasureError(f"unexpected {backend} response shape ({exc!r}): {head}") from None
    return str(kind), None
