"""A release's parent message, from the release as stored: its facts, checklist and notes summary. Pure."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.core.checklist import ChecklistResult
from bot.core.models import Release
from bot.core.notes import ReleaseNotes
from bot.views.checklist import checklist_lines
from bot.views.mrkdwn import escape
from bot.views.render import Message, release_parent

__all__ = ["parent_message"]


def parent_message(release: Release, zone: ZoneInfo) -> Message:
    """The message at the top of the release's thread, edited in place as the release goes on."""
    lines: list[str] = []
    if release.checklist:
        lines = checklist_lines(ChecklistResult.from_dict(release.checklist))
    notes_line = None
    if release.notes:
        if release.notes.get("unavailable"):
            # The reason can quote a provider's error (GitHub's message, git's stderr): outside text.
            notes_line = f"*Release notes:* unavailable: {escape(str(release.notes['unavailable']))}"
        else:
            notes = ReleaseNotes.from_dict(release.notes)
            notes_line = f"*Release notes:* {notes.summary()} (in the thread)"
    return release_parent(release, zone, checklist_lines=lines, notes_line=notes_line)
