"""Every port of the bot, as Protocols: the edges the engine talks to and the bootstrap plugs in.

A clock, a notifier (Slack's outbox or the console), a directory of users and groups, a commit source
(local git or GitHub), a deploy provider (command, http, github_actions), and the background services the
bootstrap starts first and stops last.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from bot.core.commits import Commit
from bot.providers.base import DeployContext, LeftRun, RunIdentity, StepResult, Unproven


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Notifier(Protocol):
    """Where the bot's messages go: Slack's Web API, or the console."""

    async def post(self, channel: str, text: str, blocks: list[dict[str, Any]], thread_ts: str | None = None) -> str:
        """Post a message; returns its ts (thread key)."""
        ...

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """Replace a posted message's content."""
        ...

    async def ephemeral(self, channel: str, user: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """A message only ``user`` sees."""
        ...

    async def publish_home(self, user: str, view: dict[str, Any]) -> None:
        """Publish the App Home view for ``user``."""
        ...

    async def upload(self, channel: str, thread_ts: str | None, filename: str, content: bytes, title: str) -> None:
        """Upload a file into a channel or thread."""
        ...

    async def permalink(self, channel: str, ts: str) -> str | None:
        """A link to a posted message (summaries link to release threads); None where messages have none.
        May raise when it cannot be fetched now: callers fall back to a link of their own."""
        ...


class Directory(Protocol):
    """Who is who: user-group members and users' time zones."""

    async def group_members(self, group_id: str) -> frozenset[str]:
        """Members of a Slack user group (S…)."""
        ...

    async def user_timezone(self, user_id: str) -> str | None:
        """The user's IANA time zone, when Slack knows it."""
        ...


@runtime_checkable
class CommitSource(Protocol):
    """A commit history the bot can read release notes and lead times from."""

    @property
    def pr_url_base(self) -> str | None:
        """The repository's web address, for linking PR numbers (`…/pull/N`); None when it has none."""
        ...

    async def commits_between(self, base: str | None, head: str) -> list[Commit]:
        """Commits reachable from `head` but not from `base`, oldest first (base None: all of head's
        history, capped). Returns a `CommitList` whose `truncated` says whether the cap was hit.
        Raises SourceError with a user-facing reason."""
        ...

    async def commit_time(self, ref: str) -> datetime:
        """The committer time (timezone-aware) of `ref`; raises SourceError if unknown."""
        ...


class RunRecord(Protocol):
    """The store's record of one provider step (the fence, bot/engine/fences.py), given to the provider.

    A provider starts nothing before :meth:`starting` returns: a step the store could not record is never
    run, and a step that runs can always be found again by a restarted bot.
    """

    @property
    def output(self) -> Path:
        """Where a command step writes its output (and, next to it, its exit status)."""
        ...

    async def starting(self, identity: RunIdentity) -> None:
        """Record the step as running, named by ``identity``; raises when the store cannot write."""
        ...

    async def identified(self, remote_id: str) -> None:
        """A remote step's run id (or status URL), once its service gave it."""
        ...


class DeployProvider(Protocol):
    """A deploy back-end (command, http, github_actions)."""

    async def deploy(self, ctx: DeployContext, run: RunRecord) -> StepResult:
        """Deploy ``ctx.version`` (at ``ctx.weight`` for a canary's first step)."""
        ...

    async def shift(self, ctx: DeployContext, run: RunRecord) -> StepResult:
        """Shift traffic to ``ctx.weight`` percent (canary) or switch to ``ctx.colour`` (blue/green)."""
        ...

    async def rollback(self, ctx: DeployContext, run: RunRecord) -> StepResult:
        """Return the environment to ``ctx.version`` (the rollback target)."""
        ...

    async def inspect(self, left: LeftRun) -> StepResult | Unproven | None:
        """How a step a previous process of the bot left has ended; None while it still runs."""
        ...

    async def follow(self, left: LeftRun) -> StepResult | Unproven:
        """Wait for a left step that still runs to end, stopping it at its timeout; how it ended."""
        ...


class Service(Protocol):
    """Background work the bootstrap starts before the engine and stops after it (the Slack outbox)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Scheduler(Protocol):
    """Runs a coroutine function at an instant (APScheduler in production)."""

    def at(self, when: datetime, key: str, job: Callable[[], Awaitable[None]]) -> None:
        """Schedule ``job`` at ``when``, replacing any job with the same ``key``."""
        ...

    def cancel(self, key: str) -> None:
        """Forget the job with ``key`` if it is still waiting."""
        ...


Sleep = Callable[[float], Awaitable[None]]  # asyncio.sleep, or a test's recording stand-in
ProviderLookup = Callable[[str], "DeployProvider"]  # environment name -> its deploy provider
SourceLookup = Callable[[str], "CommitSource | None"]  # service name -> its commit source, if it has a repository
