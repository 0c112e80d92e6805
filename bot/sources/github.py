"""Commit history from GitHub's REST API (compare, list commits), through the shared GitHub client.

PR numbers come from the commit subjects (`(#123)` from squash merges, "Merge pull request #N"
merges) by the notes builder; with `resolve_prs=True` the source also asks
`GET /repos/{o}/{r}/commits/{sha}/pulls` for commits whose subject names no PR, up to
`max_pr_lookups` calls per range, best effort.

Paging, rate limits and retries are the client's (`bot.github_api`); a wait longer than its `max_wait`
is reported as a SourceError instead of stalling a release.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterator
from contextlib import aclosing, contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import quote

from yarl import URL

from bot.core.commits import Commit, CommitList, split_message
from bot.github_api import DEFAULT_API_URL, GitHubClient, GitHubError
from bot.sources.base import DEFAULT_MAX_COMMITS, SourceError, validate_ref

__all__ = ["GitHubSource"]

_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_PR_IN_SUBJECT = re.compile(r"\(#\d+\)")
_PR_LOOKUP_CONCURRENCY = 4


class GitHubSource:
    """A `CommitSource` over `owner/name` on GitHub (or GitHub Enterprise, per the client's `api_url`)."""

    def __init__(
        self,
        repo: str,
        *,
        client: GitHubClient,
        per_page: int = 100,
        max_commits: int = DEFAULT_MAX_COMMITS,
        resolve_prs: bool = False,
        max_pr_lookups: int = 50,
    ) -> None:
        if not _REPO.match(repo):
            raise ValueError(f"GitHub repository must look like 'owner/name', not {repo!r}")
        self.repo = repo
        self.client = client
        self.per_page = max(1, min(per_page, 100))
        self.max_commits = max_commits
        self.resolve_prs = resolve_prs
        self.max_pr_lookups = max_pr_lookups

    def __repr__(self) -> str:
        return f"GitHubSource({self.repo!r}, api_url={self.api_url!r})"

    @property
    def api_url(self) -> str:
        return self.client.api_url

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

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn the client's errors into SourceErrors that name the repository and what was asked."""
        try:
            yield
        except GitHubError as exc:
            raise self._error(exc, what) from None

    async def _get(self, url: URL, what: str) -> Any:
        """GET one JSON document."""
        with self._errors(what):
            return (await self.client.request("GET", url)).payload

    def _error(self, exc: GitHubError, what: str) -> SourceError:
        if exc.kind == "bad_json":
            return SourceError(f"GitHub answered {what} with invalid JSON")
        if exc.kind != "status" or exc.status is None:
            return SourceError(exc.reason)
        status, message = exc.status, exc.message
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
        if base is None:
            commits, truncated = await self._history(head)
        else:
            commits, truncated = await self._compare(base, head)
        if self.resolve_prs:
            commits = await self._add_associated_prs(commits)
        return CommitList(commits, truncated=truncated)

    async def _compare(self, base: str, head: str) -> tuple[list[Commit], bool]:
        what = f"{base}...{head}"
        url = self._repo_url("compare", what).with_query(per_page=self.per_page, page=1)
        commits: list[Commit] = []
        total = 0
        more = False
        with self._errors(what):
            async with aclosing(self.client.pages(url)) as pages:
                async for page in pages:
                    payload = page.payload
                    if not isinstance(payload, dict) or not isinstance(payload.get("commits"), list):
                        raise SourceError(f"GitHub answered the comparison {what} in an unexpected shape")
                    total = max(total, int(payload.get("total_commits") or 0))
                    commits.extend(_commit(item) for item in payload["commits"])
                    more = page.next_url is not None
                    if len(commits) >= self.max_commits:
                        break
        truncated = len(commits) > self.max_commits or total > self.max_commits or more
        # The compare API lists oldest first; keep the oldest `max_commits` it gave us.
        return commits[: self.max_commits], truncated

    async def _history(self, head: str) -> tuple[list[Commit], bool]:
        what = f"the history of {head}"
        url = self._repo_url("commits").with_query(sha=head, per_page=self.per_page, page=1)
        newest_first: list[Commit] = []
        more = False
        with self._errors(what):
            async with aclosing(self.client.pages(url)) as pages:
                async for page in pages:
                    if not isinstance(page.payload, list):
                        raise SourceError(f"GitHub answered {what} in an unexpected shape")
                    newest_first.extend(_commit(item) for item in page.payload)
                    more = page.next_url is not None
                    if len(newest_first) >= self.max_commits:
                        break
        truncated = len(newest_first) > self.max_commits or more
        return list(reversed(newest_first[: self.max_commits])), truncated

    async def _add_associated_prs(self, commits: list[Commit]) -> list[Commit]:
        """Fill `pr_numbers` from GitHub's associated PRs for commits whose subject names none."""
        wanted = [c for c in commits if not c.is_merge and not _PR_IN_SUBJECT.search(c.subject)]
        wanted = wanted[: self.max_pr_lookups]
        gate = asyncio.Semaphore(_PR_LOOKUP_CONCURRENCY)

        async def lookup(commit: Commit) -> tuple[str, tuple[int, ...]]:
            async with gate:
                try:
                    payload = await self._get(self._repo_url("commits", commit.sha, "pulls"), commit.sha)
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
        payload = await self._get(self._repo_url("commits", ref), f"commit {ref!r}")
        if not isinstance(payload, dict):
            raise SourceError(f"GitHub answered commit {ref!r} in an unexpected shape")
        return _commit(payload).committed_at


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
