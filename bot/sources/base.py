"""What every commit source shares: its error and ref validation; the port (`CommitSource`) is in bot.ports."""

from __future__ import annotations

import re

__all__ = ["DEFAULT_MAX_COMMITS", "SourceError", "validate_ref"]

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
