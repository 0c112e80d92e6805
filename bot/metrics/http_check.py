"""HTTP checks: GET a URL; judge its status, or a numeric field of its JSON body.

Decisions:

- Without ``json_field`` the measured value is the status code; with no conditions the verdict is
  ``status == expect_status`` (default 200). A reachable endpoint answering the wrong status is a real
  FAIL — the service itself said it is unhealthy.
- With ``json_field`` (a dotted path such as ``checks.db.latency_ms``; digits index lists) the status
  must equal ``expect_status`` first, else :class:`CheckFailed`; the field's number is then judged by
  ``pass_if``/``fail_if``. Booleans count as 1/0, numeric strings are parsed, a missing or null field is
  an empty result (``on_empty``).
- Connection refused, DNS failure, timeout, a body that is not JSON or a field that is not a number are
  :class:`MeasureError`: retried, then INCONCLUSIVE "metrics unavailable", never FAIL.
- A 401 or 403 (unless it is ``expect_status``) says the bot may not read the endpoint, not that the
  service is unhealthy: a :class:`MeasureError`, not retried (the same credentials are refused again), with
  no body (an answer about credentials is the one most likely to quote them). A wrong or expired token
  therefore never fails a check, and never rolls a release back.
- A check's ``auth`` (a bearer token, basic auth, headers from environment variables, a CA bundle) is
  resolved by :class:`~bot.http_auth.Credentials`, once per block, and sent with its request.
"""

from __future__ import annotations

import json
from datetime import datetime
from types import TracebackType
from typing import Any

import aiohttp

from bot.config import Check
from bot.core.verdicts import render_query
from bot.http_auth import Credentials, CredentialsError
from bot.http_session import HttpSession
from bot.metrics.base import CheckFailed, MeasureError

__all__ = ["HttpChecker", "extract_field"]

_BODY_HEAD = 200
_REFUSED = (401, 403)


class HttpChecker:
    """Measures ``http:`` checks; implements Measurer. ``at`` is ignored: an endpoint is read now.

    ``session`` as for :class:`~bot.metrics.prometheus.PrometheusClient`: shared and closed by its
    owner, or (None) the checker's own, opened on first use and closed by :meth:`close`. ``credentials``
    resolves each check's ``auth`` (default: the process environment, paths from the working directory).
    """

    def __init__(
        self,
        *,
        timeout: float,
        session: HttpSession | aiohttp.ClientSession | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        self.timeout = timeout
        self._http = HttpSession.of(session)
        self._credentials = credentials or Credentials()

    async def __aenter__(self) -> HttpChecker:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this checker opened it."""
        await self._http.release()

    async def measure(
        self, check: Check, at: datetime, *, service: str, environment: str, version: str
    ) -> float | None:
        """The status code, or the JSON field's number; None when the field is absent or null."""
        if check.http is None:
            raise ValueError(f"check {check.name!r} is not an http check")
        url = render_query(check.http, service, environment, version)
        expected = check.expect_status or 200
        try:
            auth = self._credentials.resolve(check.auth)  # checked at start-up; here for a checker used alone
        except CredentialsError as exc:
            raise MeasureError(f"auth: {exc}", retryable=False) from None
        session = self._http.get()
        try:
            async with session.get(
                url,
                headers=auth.headers,
                ssl=auth.ssl,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                # Following redirects would make an expected 3xx impossible to observe.
                allow_redirects=auth.follow_redirects and not 300 <= expected < 400,
            ) as response:
                status = response.status
                text = await response.text(errors="replace")
        except TimeoutError:
            raise MeasureError(f"GET {url} timed out after {self.timeout:g}s") from None
        except aiohttp.ClientConnectionError as exc:
            raise MeasureError(f"cannot connect to {url}: {exc}") from None
        except aiohttp.ClientError as exc:
            raise MeasureError(f"GET {url} failed: {exc}") from None
        if status in _REFUSED and status != expected:
            raise MeasureError(
                f"GET {url} answered HTTP {status}: credentials refused or missing (see auth)", retryable=False
            )
        if check.json_field is None:
            return float(status)
        if status != expected:
            raise CheckFailed(f"HTTP {status} from {url} (expected {expected}): {text[:_BODY_HEAD]}")
        try:
            body = json.loads(text)
        except ValueError:
            raise MeasureError(f"{url} did not answer JSON: {text[:_BODY_HEAD]}") from None
        return extract_field(body, check.json_field)


def extract_field(body: Any, path: str) -> float | None:
    """Follow a dotted ``path`` into parsed JSON; None when absent or null; MeasureError if not a number."""
    node = body
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
        if node is None:
            return None
    if isinstance(node, bool):
        return 1.0 if node else 0.0
    if isinstance(node, int | float):
        return float(node)
    if isinstance(node, str):
        try:
            return float(node)
        except ValueError:
            pass
    raise MeasureError(f"json_field {path!r} is {json.dumps(node)[:_BODY_HEAD]}, not a number", retryable=False)
