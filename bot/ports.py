"""The engine's ports: the edges it talks to, as Protocols (Slack or console, a clock, a directory)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol


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


class Directory(Protocol):
    """Who is who: user-group members and users' time zones."""

    async def group_members(self, group_id: str) -> frozenset[str]:
        """Members of a Slack user group (S…)."""
        ...

    async def user_timezone(self, user_id: str) -> str | None:
        """The user's IANA time zone, when Slack knows it."""
        ...
