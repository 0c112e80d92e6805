"""The commit-source port: what the engine needs from a history (local git or GitHub)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Protocol, runtime_checkable

from bot.core.commits import Commit

__all__ = ["DEFAULT_MAX_COMMITS", "CommitSource", "SourceError", "validate_ref"]

DEFAULT_MAX_COMMITS = 10_000
_REF = re.compile(r"^[A-Za-z0-9._/+-]{1,255}$")


class SourceError(Exception):
    """A history could not be read; `reason` is a message fit to show the user as is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def validate_ref(ref: str) -> str:
    """Return `ref` if it is a plain branch/tag/sha name; raise SourceError otherwise.

    Only `[A-Za-z0-9._/+-]`, never starting with `-` (no option injection) and without `..`
    (no range syntax smuggled into a single ref).
    """
    if not _REF.match(ref) or ref.startswith("-") or ".." in ref:
        raise SourceError(f"{ref!r} is not a valid commit reference (use a sha, tag or branch name)")
    return ref


@runtime_checkable
class CommitSource(Protocol):
    """A commit history the bot can read release notes and lead times from."""

    async def commits_between(self, base: str | None, head: str) -> list[Commit]:
        """Commits reachable from `head` but not from `base`, oldest first (base None: all of head's
        history, capped). Returns a `CommitList` whose `truncated` says whether the cap was hit.
        Raises SourceError with a user-facing reason."""
        ...

    async def commit_time(self, ref: str) -> datetime:
        """The committer time (timezone-aware) of `ref`; raises SourceError if unknown."""
        ...
