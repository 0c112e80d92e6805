"""GitHubSource against a real aiohttp fake of GitHub's REST API on port 0."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from bot.core.commits import CommitList
from bot.core.notes import build_release_notes
from bot.github_api import GitHubClient
from bot.http_session import HttpSession
from bot.ports import CommitSource
from bot.sources.base import SourceError
from bot.sources.github import GitHubSource
from tests.fakes.github_api import FakeGitHub
from tests.fakes.sleep import RecordingSleep

REPO = "cds-snc/notification-api"
NOW = 1_714_560_000.0  # the injected clock's "now" (2024-05-01T10:40:00Z)


@pytest.fixture
def sleeper() -> RecordingSleep:
    return RecordingSleep()


def source(
    gh: FakeGitHub,
    http: HttpSession,
    sleeper: RecordingSleep,
    *,
    max_wait: float = 60.0,
    max_retries: int = 3,
    **kwargs: object,
) -> GitHubSource:
    client = GitHubClient(
        session=http,
        token="ghp_test",
        api_url=gh.url,
        sleep=sleeper,
        clock=lambda: NOW,
        max_wait=max_wait,
        max_retries=max_retries,
    )
    return GitHubSource(REPO, client=client, **kwargs)  # type: ignore[arg-type]


def compare_requests(gh: FakeGitHub) -> list[dict[str, str]]:
    return [r.query for r in gh.requests if "/compare/" in r.path]


async def test_two_pages_of_compare_are_read_oldest_first(
    gh: FakeGitHub, http: HttpSession, sleeper: RecordingSleep
) -> None:
    shas = gh.add_history(REPO, ["chore: initial"] + [f"feat: change {i} (#{i + 1})" for i in range(150)])
    gh.tag(REPO, "v1.0.0", shas[0])

    commits = await source(gh, http, sleeper).commits_between("v1.0.0", shas[-1])

    assert [c.sha for c in commits] == shas[1:]
    assert compare_requests(gh) == [{"per_page": "100", "page": "1"}, {"per_page": "100", "page": "2"}]
    assert isinstance(commits, CommitList) and not commits.truncated
    first = commits[0]
    assert first.subject == "feat: change 0 (#1)"
    assert first.author_name == "Ada Lovelace" and first.author_login == "ada"
    assert first.authored_at == datetime(2024, 5, 1, 9, 1, tzinfo=UTC)
    assert first.parents == (shas[0],)
    assert all(r.headers["Authorization"] == "Bearer ghp_test" for r in gh.requests)
    assert sleeper.waits == []


async def test_satisfies_the_commit_source_protocol(gh: FakeGitHub, http: HttpSession, sleeper: RecordingSleep) -> None:
    assert isinstance(source(gh, http, sleeper), CommitSource)


async def test_rate_limit_with_reset_is_waited_out(gh: FakeGitHub, http: HttpSession, sleeper: RecordingSleep) -> None:
    shas = gh.add_history(REPO, ["chore: initial", "fix: one", "fix: two"])
    gh.rate_limit(status=403, reset_at=int(NOW) + 7)

    commits = await source(gh, http, sleeper).commits_between(shas[0], shas[-1])

    assert [c.subject for c in commits] == ["fix: one", "fix: two"]
    # 7 s until the reset, plus the reset second itself.
    assert sleeper.waits == [8.0]
    assert len(compare_requests(gh)) == 2


async def test_429_retry_after_is_honoured(gh: FakeGitHub, http: HttpSession, sleeper: RecordingSleep) -> None:
    shas = gh.add_history(REPO, ["chore: initial", "perf: faster"])
    gh.rate_limit(status=429, retry_after=1)
    gh.rate_limit(status=429, retry_after=2)

    commits = await source(gh, http, sleeper).commits_between(shas[0], shas[-1])

    assert [c.subject for c in commits] == ["perf: faster"]
    assert sleeper.waits == [1.0, 2.0]


async def test_rate_limit_longer_than_the_cap_is_an_error_not_a_stall(
    gh: FakeGitHub, http: HttpSession, sleeper: RecordingSleep
) -> None:
    shas = gh.add_history(REPO, ["chore: initial", "fix: one"])
    gh.rate_limit(status=403, reset_at=int(NOW) + 3600)

    with pytest.raises(SourceError, match="rate limit") as info:
        await source(gh, http, sleeper, max_wait=60).commits_between(shas[0], shas[-1])

    assert "3601s" in info.value.reason and "try again later" in info.value.reason
    assert sleeper.waits == []


async def test_rate_limit_that_never_lifts_gives_up(gh: FakeGitHub, http: HttpSession, sleeper: RecordingSleep) -> None:
    shas = gh.add_history(REPO, ["chore: initial", "fix: one"])
    for _ in range(4):
        gh.rate_limit(status=429, retry_after=1)

    with pytest.raises(SourceError, match="after 3 retries"):
        await source(gh, http, sleeper, max_retries=3).commits_between(shas[0], shas[-1])
    assert sleeper.waits == [1.0, 1.0, 1.0]


async def test_unknown_commit_is_a_clear_error(gh: FakeGitHub, http: HttpSession, sleeper: RecordingSleep) -> None:
    shas = gh.add_history(REPO, ["chore: initial", "fix: one"])

    with pytest.raises(SourceError) as info:
        await source(gh, http, sleeper).commits_between("v9.9.9", shas[-1])

    assert "could not find v9.9.9..." in info.value.reason
    assert REPO in info.value.reason and "No commit found for SHA: v9.9.9" in info.value.reason


async def test_unknown_repository_is_a_clear_error(gh: FakeGitHub, http: HttpSession, sleeper: RecordingSleep) -> None:
    with pytest.raises(SourceError, match="could not find .* in cds-snc/notification-api .*Not Found"):
        await source(gh, http, sleeper).commits_between("v1", "v2")


async def test_unreachable_host_is_a_source_error(http: HttpSession, sleeper: RecordingSleep) -> None:
    # A port that was free a moment ago and has no listener: connection refused.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = GitHubClient(session=http, token=None, api_url=f"http://127.0.0.1:{port}", sleep=sleeper, timeout=5)
    src = GitHubSource(REPO, client=client)

    with pytest.raises(SourceError, match=r"GitHub API unreachable at http://127\.0\.0\.1:\d+"):
        await src.commits_between("v1", "v2")


async def test_refs_that_could_inject_are_refused_before_any_request(
    gh: FakeGitHub, http: HttpSession, sleeper: RecordingSleep
) -> None:
    for bad in ("--upload-pack=x", "a..b", "main?x=1", "v1 v2"):
        with pytest.raises(SourceError, match="not a valid commit reference"):
            await source(gh, http, sleeper).commits_between(bad, "main")
    assert gh.requests == []


async def test_first_release_reads_head_history_and_caps_it(
    gh: FakeGitHub, http: HttpSession, sleeper: RecordingSleep
) -> None:
    shas = gh.add_history(REPO, [f"fix: {i}" for i in range(7)])

    commits = await source(gh, http, sleeper, per_page=3, max_commits=5).commits_between(None, shas[-1])

    # Newest five, oldest first; the two oldest are left out and the list says so.
    assert [c.sha for c in commits] == shas[2:]
    assert isinstance(commits, CommitList) and commits.truncated
    assert [r.query["page"] for r in gh.requests] == ["1", "2"]


async def test_associated_prs_fill_in_numbers_missing_from_subjects(
    gh: FakeGitHub, http: HttpSession, sleeper: RecordingSleep
) -> None:
    shas = gh.add_history(REPO, ["chore: initial", "feat: direct push", "fix: squashed (#41)"])
    gh.add_pull(REPO, shas[1], 40)
    gh.add_pull(REPO, shas[1], 39, merged=False)

    src = source(gh, http, sleeper, resolve_prs=True)
    commits = await src.commits_between(shas[0], shas[-1])
    notes = build_release_notes(commits, pr_url_base=src.pr_url_base)

    assert [c.pr_numbers for c in commits] == [(40,), ()]
    # Only the commit without "(#N)" was looked up.
    assert [r.path for r in gh.requests if r.path.endswith("/pulls")] == [f"/repos/{REPO}/commits/{shas[1]}/pulls"]
    features = notes.section("features")
    assert features is not None and features.entries[0].pr_numbers == (40,)
    assert notes.pr_url(40) == f"{gh.url}/{REPO}/pull/40"


async def test_commit_time_and_unknown_ref(gh: FakeGitHub, http: HttpSession, sleeper: RecordingSleep) -> None:
    shas = gh.add_history(REPO, ["chore: initial", "fix: one"])
    src = source(gh, http, sleeper)

    assert await src.commit_time(shas[1]) == datetime(2024, 5, 1, 9, 1, tzinfo=UTC)
    with pytest.raises(SourceError, match="No commit found for SHA: nope"):
        await src.commit_time("nope")


def test_pr_url_base_for_github_and_enterprise() -> None:
    http = HttpSession()  # never opened: nothing here sends a request
    github = GitHubClient(session=http, token=None)
    enterprise = GitHubClient(session=http, token=None, api_url="https://ghe.example.org/api/v3")
    assert GitHubSource(REPO, client=github).pr_url_base == f"https://github.com/{REPO}"
    assert GitHubSource(REPO, client=enterprise).pr_url_base == f"https://ghe.example.org/{REPO}"
    env = {"GITHUB_TOKEN": "t", "GITHUB_API_URL": "https://ghe.example.org/api/v3"}
    assert (
        GitHubSource(REPO, client=GitHubClient.from_env(env, session=http)).api_url == "https://ghe.example.org/api/v3"
    )
    with pytest.raises(ValueError, match="owner/name"):
        GitHubSource("not a repo", client=github)
