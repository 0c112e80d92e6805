"""Commit history from GitHub's REST API (compare, list commits), with pagination and rate limits.

PR numbers come from the commit subjects (`(#123)` from squash merges, "Merge pull request #N"
merges) by the notes builder; with `resolve_prs=True` the source also asks
`GET /repos/{o}/{r}/commits/{sha}/pulls` for commits whose subject names no PR, up to
`max_pr_lookups` calls per range, best effort.

Rate limits: a 403/429 with `retry-after` waits that many seconds; with `x-ratelimit-remaining: 0`
it waits until `x-ratelimit-reset`; a 429 with neither waits a minute (GitHub's advice for secondary
limits). A wait longer than `max_wait` is reported as a SourceError instead of stalling a release.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from bot.core.commits import Commit, CommitList, split_message
from bot.sources.base import DEFAULT_MAX_COMMITS, SourceError, validate_ref

__all__ = ["DEFAULT_API_URL", "GitHubSource"]

DEFAULT_API_URL = "https://api.github.com"
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_PR_IN_SUBJECT = re.compile(r"\(#\d+\)")
_SECONDARY_LIMIT_WAIT = 60.0
_PR_LOOKUP_CONCURRENCY = 4

Sleep = Callable[[float], Awaitable[None]]


class _Retry(Exception):
    """Internal: the response asked us to wait this long and try again."""

    def __init__(self, wait: float, why: str) -> None:
        super().__init__(why)
        self.wait = wait
        self.why = why


class GitHubSource:
    """A `CommitSource` over `owner/name` on GitHub (or GitHub Enterprise via `api_url`)."""

    def __init__(
        self,
        repo: str,
        *,
        token: str | None = None,
        api_url: str = DEFAULT_API_URL,
        session: aiohttp.ClientSession | None = None,
        per_page: int = 100,
        max_commits: int = DEFAULT_MAX_COMMITS,
        max_wait: float = 60.0,
        max_retries: int = 3,
        timeout: float = 30.0,
        resolve_prs: bool = False,
        max_pr_lookups: int = 50,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not _REPO.match(repo):
            raise ValueError(f"GitHub repository must look like 'owner/name', not {repo!r}")
        self.repo = repo
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._session = session
        self.per_page = max(1, min(per_page, 100))
        self.max_commits = max_commits
        self.max_wait = max_wait
        self.max_retries = max_retries
        self.timeout = timeout
        self.resolve_prs = resolve_prs
        self.max_pr_lookups = max_pr_lookups
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def from_env(cls, repo: str, environ: Mapping[str, str], **kwargs: Any) -> GitHubSource:
        """Build from `GITHUB_TOKEN` / `GITHUB_API_URL` in the given mapping (read by the caller once)."""
        return cls(
            repo,
            token=environ.get("GITHUB_TOKEN") or None,
            api_url=environ.get("GITHUB_API_URL") or DEFAULT_API_URL,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"GitHubSource({self.repo!r}, api_url={self.api_url!r})"

    @property
    def pr_url_base(self) -> str:
        """The repository's web address, for linking PR numbers (`…/pull/N`)."""
        if self.api_url == DEFAULT_API_URL:
            web = "https://github.com"
        elif self.api_url.endswith("/api/v3"):
            web = self.api_url.removesuffix("/api/v3")  # GitHub Enterprise Server
        else:
            web = str(URL(self.api_url).origin())
        return f"{web}/{self.repo}"

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[aiohttp.ClientSession]:
        if self._session is not None:
            yield self._session
            return
        async with aiohttp.ClientSession() as session:
            yield session

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "release-bot",
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _rate_limit_wait(self, status: int, headers: Mapping[str, str]) -> float | None:
        """Seconds to wait before retrying, or None when the response isn't a rate limit."""
        if status not in (403, 429):
            return None
        retry_after = headers.get("retry-after", "").strip()
        if retry_after.isdigit():
            return float(retry_after)
        reset = headers.get("x-ratelimit-reset", "").strip()
        if headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
            return max(0.0, int(reset) - self._clock()) + 1.0  # +1 s: the reset second itself
        return _SECONDARY_LIMIT_WAIT if status == 429 else None

    async def _get(self, session: aiohttp.ClientSession, url: URL, what: str) -> tuple[Any, URL | None]:
        """GET JSON, waiting out rate limits; returns (payload, next page URL)."""
        last_why = ""
        for attempt in range(self.max_retries + 1):
            try:
                return await self._get_once(session, url, what)
            except _Retry as retry:
                last_why = retry.why
                if retry.wait > self.max_wait:
                    raise SourceError(
                        f"GitHub {retry.why}; it would take {retry.wait:.0f}s, longer than the "
                        f"{self.max_wait:g}s the bot waits — try again later"
                    ) from None
                if attempt < self.max_retries:
                    await self._sleep(retry.wait)
        raise SourceError(f"GitHub {last_why} after {self.max_retries} retries — try again later")

    async def _get_once(self, session: aiohttp.ClientSession, url: URL, what: str) -> tuple[Any, URL | None]:
        try:
            async with session.get(
                url, headers=self._headers(), timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as resp:
                if resp.status == 200:
                    payload = await resp.json(content_type=None)
                    link = resp.links.get("next")
                    nxt = link.get("url") if link is not None else None
                    return payload, self._same_origin(nxt) if isinstance(nxt, URL) else None
                text = await resp.text()
                wait = self._rate_limit_wait(resp.status, resp.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise SourceError(f"GitHub API unreachable at {self.api_url}: {reason}") from exc
        except ValueError as exc:
            raise SourceError(f"GitHub answered {what} with invalid JSON") from exc
        message = _message(text)
        if wait is not None:
            raise _Retry(wait, f"rate limit reached ({resp.status}: {message})")
        if resp.status in (502, 503, 504):
            raise _Retry(1.0, f"is unavailable ({resp.status})")
        raise self._http_error(resp.status, message, what)

    def _same_origin(self, url: URL) -> URL:
        # The token goes with every request, so never follow a Link to another host.
        if url.origin() != URL(self.api_url).origin():
            raise SourceError(f"GitHub pagination pointed outside {self.api_url}; refusing to follow it")
        return url

    def _http_error(self, status: int, message: str, what: str) -> SourceError:
        if status == 404:
            return SourceError(f"GitHub could not find {what} in {self.repo} ({message})")
        if status == 401:
            return SourceError(f"GitHub rejected the token (401: {message}); check GITHUB_TOKEN")
        if status == 403:
            return SourceError(f"GitHub refused access to {self.repo} (403: {message})")
        if status == 422:
            return SourceError(f"GitHub could not resolve {what} in {self.repo} ({message})")
        return SourceError(f"GitHub API error {status} reading {what} in {self.repo}: {message}")

    def _repo_url(self, *parts: str) -> URL:
        path = "/".join(quote(p, safe="/+") for p in parts)
        return URL(f"{self.api_url}/repos/{self.repo}/{path}", encoded=True)

    async def commits_between(self, base: str | None, head: str) -> list[Commit]:
        """Commits in `head` not in `base`, oldest first (compare API; base None: head's history).

        Returns a `CommitList`; `truncated` is True when more than `max_commits` exist.
        """
        validate_ref(head)
        if base is not None:
            validate_ref(base)
        async with self._client() as session:
            if base is None:
                commits, truncated = await self._history(session, head)
            else:
                commits, truncated = await self._compare(session, base, head)
            if self.resolve_prs:
                commits = await self._add_associated_prs(session, commits)
        return CommitList(commits, truncated=truncated)

    async def _compare(self, session: aiohttp.ClientSession, base: str, head: str) -> tuple[list[Commit], bool]:
        what = f"{base}...{head}"
        url: URL | None = self._repo_url("compare", what).with_query(per_page=self.per_page, page=1)
        commits: list[Commit] = []
        total = 0
        while url is not None and len(commits) < self.max_commits:
            payload, url = await self._get(session, url, what)
            if not isinstance(payload, dict) or not isinstance(payload.get("commits"), list):
                raise SourceError(f"GitHub answered the comparison {what} in an unexpected shape")
            total = max(total, int(payload.get("total_commits") or 0))
            commits.extend(_commit(item) for item in payload["commits"])
        truncated = len(commits) > self.max_commits or total > self.max_commits or url is not None
        # The compare API lists oldest first; keep the oldest `max_commits` it gave us.
        return commits[: self.max_commits], truncated

    async def _history(self, session: aiohttp.ClientSession, head: str) -> tuple[list[Commit], bool]:
        url: URL | None = self._repo_url("commits").with_query(sha=head, per_page=self.per_page, page=1)
        newest_first: list[Commit] = []
        while url is not None and len(newest_first) < self.max_commits:
            payload, url = await self._get(session, url, f"the history of {head}")
            if not isinstance(payload, list):
                raise SourceError(f"GitHub answered the history of {head} in an unexpected shape")
            newest_first.extend(_commit(item) for item in payload)
        truncated = len(newest_first) > self.max_commits or url is not None
        return list(reversed(newest_first[: self.max_commits])), truncated

    async def _add_associated_prs(self, session: aiohttp.ClientSession, commits: list[Commit]) -> list[Commit]:
        """Fill `pr_numbers` from GitHub's associated PRs for commits whose subject names none."""
        wanted = [c for c in commits if not c.is_merge and not _PR_IN_SUBJECT.search(c.subject)]
        wanted = wanted[: self.max_pr_lookups]
        gate = asyncio.Semaphore(_PR_LOOKUP_CONCURRENCY)

        async def lookup(commit: Commit) -> tuple[str, tuple[int, ...]]:
            async with gate:
                try:
                    payload, _ = await self._get(session, self._repo_url("commits", commit.sha, "pulls"), commit.sha)
                except SourceError:
                    return commit.sha, ()  # best effort: the subject-based numbers still apply
            pulls = payload if isinstance(payload, list) else []
            merged = [p for p in pulls if isinstance(p, dict) and p.get("merged_at")]
            return commit.sha, tuple(int(p["number"]) for p in merged if isinstance(p.get("number"), int))

        found = dict(await asyncio.gather(*(lookup(c) for c in wanted)))
        return [dataclasses.replace(c, pr_numbers=found[c.sha]) if found.get(c.sha) else c for c in commits]

    async def commit_time(self, ref: str) -> datetime:
        """The committer time of `ref` on GitHub."""
        validate_ref(ref)
        async with self._client() as session:
            payload, _ = await self._get(session, self._repo_url("commits", ref), f"commit {ref!r}")
        if not isinstance(payload, dict):
            raise SourceError(f"GitHub answered commit {ref!r} in an unexpected shape")
        return _commit(payload).committed_at


def _message(text: str) -> str:
    """GitHub's error `message`, or the start of the body when it isn't JSON."""
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:200] or "no message"
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return text.strip()[:200] or "no message"


def _date(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("naive timestamp")
    return parsed


def _commit(item: Any) -> Commit:
    """A `Commit` from one element of GitHub's `commits[]` (compare / list commits / get commit)."""
    try:
        detail = item["commit"]
        author = detail.get("author") or {}
        committer = detail.get("committer") or author
        subject, body = split_message(str(detail["message"]))
        login = (item.get("author") or {}).get("login")
        return Commit(
            sha=str(item["sha"]),
            subject=subject,
            body=body,
            author_name=str(author.get("name") or login or "unknown"),
            author_email=str(author.get("email") or ""),
            authored_at=_date(author["date"]),
            committed_at=_date(committer["date"]),
            parents=tuple(str(p["sha"]) for p in item.get("parents") or []),
            author_login=str(login) if login else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SourceError(f"GitHub answered with a commit in an unexpected shape ({exc!r})") from exc
