"""The one GitHub REST client: auth, base URL, JSON requests, `Link` paging, rate limits, bounded retries.

Used by the commit source (`bot.sources.github`) and the `github_actions` deploy provider over the
runtime's shared HTTP session. gidgethub was considered: it pages with `getiter` and parses rate-limit
headers, but it neither waits nor retries, hides whether a next page exists (the source reports a
truncated history from that) and `total_commits` of a compare, and its exceptions would still need
mapping to these callers' messages — so the waiting and paging here would be written anyway.

Rate limits: a 403/429 with `retry-after` waits that many seconds; with `x-ratelimit-remaining: 0` it
waits until `x-ratelimit-reset` (a minute when the reset is missing); a 429 with neither waits a minute
(GitHub's advice for secondary limits). 408 and 5xx wait a second. A request is tried at most
`1 + retries` times; a wait longer than `max_wait` gives up at once instead of stalling a release.
Connection errors are not retried here: the caller knows whether trying again makes sense.
Every failure is a `GitHubError`; its `retry_after` is the wait GitHub's last answer named, if any, for a
caller that retries later by itself (the event worker's GitHub lane).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from yarl import URL

from bot.http_session import HttpSession

__all__ = ["DEFAULT_API_URL", "GitHubClient", "GitHubError", "GitHubResponse"]

DEFAULT_API_URL = "https://api.github.com"
_SECONDARY_LIMIT_WAIT = 60.0
_UNAVAILABLE_WAIT = 1.0
_UNAVAILABLE = frozenset({408, 500, 502, 503, 504})

Sleep = Callable[[float], Awaitable[None]]
# unreachable: no answer (network, timeout); gave_up: rate-limited or unavailable past the retries or the
# wait cap; bad_json / bad_link: an answer the client cannot use; status: any other non-2xx answer.
ErrorKind = Literal["unreachable", "gave_up", "bad_json", "bad_link", "status"]


class GitHubError(Exception):
    """A GitHub request that failed; ``status`` and ``message`` are GitHub's answer when there was one.

    ``retry_after``: the seconds GitHub's last answer asked to wait — its `retry-after`, or until its
    `x-ratelimit-reset` when `x-ratelimit-remaining` is 0 — or None when it named no time (no answer, or a
    limit without a hint: GitHub then advises a minute, which is the caller's choice to make).
    """

    def __init__(
        self,
        reason: str,
        *,
        kind: ErrorKind,
        status: int | None = None,
        message: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.status = status
        self.message = message
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """True when the same request may well succeed later."""
        return self.kind in ("unreachable", "gave_up")


@dataclass(frozen=True)
class GitHubResponse:
    """A 2xx answer: its status, its decoded JSON (None for an empty body) and its `Link: rel="next"`."""

    status: int
    payload: Any
    next_url: URL | None


class _Retry(Exception):
    """Internal: the answer asks to wait this long and try again."""

    def __init__(self, wait: float, why: str, status: int, message: str, advised: float | None) -> None:
        super().__init__(why)
        self.wait = wait
        self.why = why
        self.status = status
        self.message = message
        self.advised = advised  # the wait the answer itself named (GitHubError.retry_after)


class GitHubClient:
    """GitHub's REST API at ``api_url`` (GitHub Enterprise: ``https://host/api/v3``) with ``token``."""

    def __init__(
        self,
        *,
        session: HttpSession,
        token: str | None,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 30.0,
        max_wait: float = 60.0,
        max_retries: int = 3,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.max_wait = max_wait
        self.max_retries = max_retries
        self._http = session
        self._token = token
        self._sleep = sleep
        self._clock = clock  # wall clock: x-ratelimit-reset is a Unix time

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, session: HttpSession, **kwargs: Any) -> GitHubClient:
        """Build from `GITHUB_TOKEN` / `GITHUB_API_URL` in the given mapping (read by the caller once)."""
        return cls(
            session=session,
            token=environ.get("GITHUB_TOKEN") or None,
            api_url=environ.get("GITHUB_API_URL") or DEFAULT_API_URL,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"GitHubClient(api_url={self.api_url!r})"

    @property
    def has_token(self) -> bool:
        return bool(self._token)

    @property
    def session(self) -> HttpSession:
        """The shared HTTP session this client sends through."""
        return self._http

    async def request(
        self, method: str, url: URL | str, *, body: Any = None, retries: int | None = None
    ) -> GitHubResponse:
        """One call, waiting out rate limits and unavailability up to ``retries`` times (default ``max_retries``).

        Pass ``retries=0`` where a retry is the caller's business (a workflow dispatch must not be sent
        twice; a poller tries again at its next poll).
        """
        limit = self.max_retries if retries is None else retries
        for attempt in range(limit + 1):
            try:
                return await self._once(method, url, body)
            except _Retry as retry:
                if limit > 0 and retry.wait > self.max_wait:
                    raise GitHubError(
                        f"GitHub {retry.why}; it would take {retry.wait:.0f}s, longer than the "
                        f"{self.max_wait:g}s the bot waits — try again later",
                        kind="gave_up",
                        status=retry.status,
                        message=retry.message,
                        retry_after=retry.advised,
                    ) from None
                if attempt == limit:
                    raise GitHubError(
                        f"GitHub {retry.why} after {limit} retries — try again later",
                        kind="gave_up",
                        status=retry.status,
                        message=retry.message,
                        retry_after=retry.advised,
                    ) from None
                await self._sleep(retry.wait)
        raise AssertionError("unreachable: the loop returns or raises on its last attempt")

    async def pages(self, url: URL | str) -> AsyncGenerator[GitHubResponse, None]:
        """GET ``url`` and each `Link: rel="next"` after it; stop early by leaving the loop."""
        next_url: URL | str | None = url
        while next_url is not None:
            page = await self.request("GET", next_url)
            yield page
            if page.next_url is not None and page.next_url.origin() != URL(self.api_url).origin():
                # The token goes with every request, so never follow a Link to another host.
                raise GitHubError(
                    f"GitHub pagination pointed outside {self.api_url}; refusing to follow it", kind="bad_link"
                )
            next_url = page.next_url

    async def _once(self, method: str, url: URL | str, body: Any) -> GitHubResponse:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with self._http.get().request(
                method, url, json=body, headers=self._headers(), timeout=timeout
            ) as resp:
                status = resp.status
                text = await resp.text()
                headers = resp.headers
                link = resp.links.get("next")
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise GitHubError(f"GitHub API unreachable at {self.api_url}: {reason}", kind="unreachable") from exc
        if 200 <= status < 300:
            try:
                payload = json.loads(text) if text.strip() else None
            except ValueError:
                raise GitHubError(
                    f"GitHub answered {URL(url).path} with invalid JSON",
                    kind="bad_json",
                    status=status,
                    message="invalid JSON",
                ) from None
            nxt = link.get("url") if link is not None else None
            return GitHubResponse(status, payload, nxt if isinstance(nxt, URL) else None)
        message = _message(text)
        advised = self.advised_wait(headers)
        wait = self.rate_limit_wait(status, headers)
        if wait is not None:
            raise _Retry(wait, f"rate limit reached ({status}: {message})", status, message, advised)
        if status in _UNAVAILABLE:
            raise _Retry(_UNAVAILABLE_WAIT, f"is unavailable ({status})", status, message, advised)
        raise GitHubError(
            f"GitHub answered HTTP {status}: {message}",
            kind="status",
            status=status,
            message=message,
            retry_after=advised,
        )

    def advised_wait(self, headers: Mapping[str, str]) -> float | None:
        """The seconds an answer itself asks to wait: `retry-after` (GitHub sends seconds), or until
        `x-ratelimit-reset` (a Unix time) when `x-ratelimit-remaining` is 0; None when it names no time."""
        retry_after = headers.get("retry-after", "").strip()
        if retry_after.isdigit():
            return float(retry_after)
        if headers.get("x-ratelimit-remaining") == "0":
            reset = headers.get("x-ratelimit-reset", "").strip()
            if reset.isdigit():
                return max(0.0, int(reset) - self._clock()) + 1.0  # +1 s: the reset second itself
        return None

    def rate_limit_wait(self, status: int, headers: Mapping[str, str]) -> float | None:
        """Seconds to wait before retrying, or None when the answer isn't a rate limit."""
        if status not in (403, 429):
            return None
        advised = self.advised_wait(headers)
        if advised is not None:
            return advised
        if headers.get("x-ratelimit-remaining") == "0":
            return _SECONDARY_LIMIT_WAIT
        return _SECONDARY_LIMIT_WAIT if status == 429 else None

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "release-bot",
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers


def _message(text: str) -> str:
    """GitHub's error `message` on one line, or the start of the body when it isn't JSON."""
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:200] or "no message"
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return " ".join(str(data["message"]).split())  # GitHub's 422 messages span lines
    return text.strip()[:200] or "no message"
