"""The shared GitHub client against the fake GitHub REST API (tests/fakes/github_api.py) on port 0."""

from __future__ import annotations

import pytest
from yarl import URL

from bot.github_api import GitHubClient, GitHubError
from bot.http_session import HttpSession
from tests.fakes.github_api import FakeGitHub
from tests.fakes.sleep import RecordingSleep

REPO = "acme/notify"
NOW = 1_714_560_000.0


def client(gh: FakeGitHub, http: HttpSession, sleeper: RecordingSleep, **kwargs: float) -> GitHubClient:
    return GitHubClient(session=http, token="ghp_test", api_url=gh.url, sleep=sleeper, clock=lambda: NOW, **kwargs)


async def test_pages_follow_link_through_a_secondary_rate_limit(gh: FakeGitHub, http: HttpSession) -> None:
    shas = gh.add_history(REPO, [f"fix: {i}" for i in range(5)])
    sleeper = RecordingSleep()
    github = client(gh, http, sleeper)
    first = URL(f"{gh.url}/repos/{REPO}/commits").with_query(sha=shas[-1], per_page=2, page=1)

    seen: list[str] = []
    async for page in github.pages(first):
        seen.extend(item["sha"] for item in page.payload)
        if page.next_url is not None and len(seen) == 2:
            # GitHub's secondary limit: a 403 with retry-after, then a 429 with no hint at all (a minute).
            gh.rate_limit(status=403, retry_after=3)
            gh.rate_limit(status=429)

    assert seen == list(reversed(shas))  # all three pages, newest first
    assert [r.query.get("page") for r in gh.requests] == ["1", "2", "2", "2", "3"]
    assert sleeper.waits == [3.0, 60.0]
    assert all(r.headers["Authorization"] == "Bearer ghp_test" for r in gh.requests)


async def test_primary_limit_waits_until_the_reset(gh: FakeGitHub, http: HttpSession) -> None:
    shas = gh.add_history(REPO, ["chore: initial"])
    gh.rate_limit(status=403, reset_at=int(NOW) + 4)
    sleeper = RecordingSleep()

    answer = await client(gh, http, sleeper).request("GET", f"{gh.url}/repos/{REPO}/commits/{shas[0]}")

    assert answer.status == 200 and answer.payload["sha"] == shas[0]
    assert sleeper.waits == [5.0]


async def test_a_wait_past_the_cap_and_a_caller_without_retries_get_one_error_type(
    gh: FakeGitHub, http: HttpSession
) -> None:
    shas = gh.add_history(REPO, ["chore: initial"])
    url = f"{gh.url}/repos/{REPO}/commits/{shas[0]}"
    sleeper = RecordingSleep()
    github = client(gh, http, sleeper, max_wait=60)

    gh.rate_limit(status=429, retry_after=600)
    with pytest.raises(GitHubError, match="it would take 600s") as too_long:
        await github.request("GET", url)
    gh.rate_limit(status=429, retry_after=1)
    with pytest.raises(GitHubError, match=r"rate limit reached \(429: API rate limit exceeded") as no_retry:
        await github.request("GET", url, retries=0)
    with pytest.raises(GitHubError) as not_found:
        await github.request("GET", f"{gh.url}/repos/acme/missing/commits")

    assert too_long.value.transient and no_retry.value.transient
    assert sleeper.waits == []
    assert (not_found.value.status, not_found.value.message, not_found.value.transient) == (404, "Not Found", False)


async def test_an_error_carries_the_wait_github_named(gh: FakeGitHub, http: HttpSession) -> None:
    shas = gh.add_history(REPO, ["chore: initial"])
    url = f"{gh.url}/repos/{REPO}/commits/{shas[0]}"
    sleeper = RecordingSleep()
    github = client(gh, http, sleeper, max_wait=60)

    gh.rate_limit(status=403, retry_after=7)  # a secondary limit: seconds, as GitHub sends them
    with pytest.raises(GitHubError) as secondary:
        await github.request("GET", url, retries=0)
    gh.rate_limit(status=403, reset_at=int(NOW) + 900)  # the primary limit spent until the reset
    with pytest.raises(GitHubError) as primary:
        await github.request("GET", url)  # 901 s is past max_wait: not waited out here
    gh.rate_limit(status=429)  # a limit naming no time
    with pytest.raises(GitHubError) as unnamed:
        await github.request("GET", url, retries=0)
    with pytest.raises(GitHubError) as not_found:
        await github.request("GET", f"{gh.url}/repos/acme/missing/commits")

    assert (secondary.value.kind, secondary.value.status, secondary.value.retry_after) == ("gave_up", 403, 7.0)
    assert (primary.value.kind, primary.value.retry_after) == ("gave_up", 901.0)  # +1 s: the reset second
    assert (unnamed.value.kind, unnamed.value.retry_after) == ("gave_up", None)
    assert not_found.value.retry_after is None
    assert sleeper.waits == []
