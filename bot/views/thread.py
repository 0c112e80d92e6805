"""A release's thread as it is told: each step, outcome, check schedule and rollback, one reply each. Pure.

Callers pass plain data (step labels, versions, environments, errors, user IDs, times); everything that
came from config, a provider or a person is escaped here, and only user IDs the bot stored become mentions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.notes import ReleaseNotes
from bot.core.windows import WindowDecision
from bot.views.mrkdwn import escape
from bot.views.notes import notes_blocks
from bot.views.render import Message, thread_reply, user, when
from bot.views.windows import window_mrkdwn

__all__ = [
    "auto_rollback",
    "back_on",
    "checks_cancelled",
    "checks_scheduled",
    "live",
    "manifest_committed",
    "manifest_failed",
    "not_started",
    "not_started_in_window",
    "release_notes",
    "rollback_asked",
    "rollback_step",
    "rolled_back_to",
    "step_done",
    "undo_impossible",
    "undo_step",
    "verify_started",
]


def release_notes(version: str, notes: ReleaseNotes, full_notes_url: str | None) -> Message:
    """The release's notes, posted in its thread as the deploy starts."""
    return Message(text=f"Release notes for {version}", blocks=notes_blocks(notes, full_notes_url=full_notes_url))


def not_started(reasons: Sequence[str]) -> Message:
    """A queued release refused just before its deploy; ``reasons`` are admission's refusals, mrkdwn already."""
    return thread_reply("🚫 Not started: " + "\n".join(reasons))


def not_started_in_window(decision: WindowDecision, zone: ZoneInfo) -> Message:
    """A queued release whose deployment window closed before its deploy started."""
    return thread_reply(f"🚫 Not started: {window_mrkdwn(decision, zone)}")


def verify_started(label: str) -> Message:
    return thread_reply(f"🔎 {escape(label)}")


def step_done(label: str) -> Message:
    return thread_reply(f"✅ {escape(label)}")


def live(service: str, version: str, env: str) -> Message:
    return thread_reply(f"🎉 {escape(service)} {escape(version)} is live in {escape(env)}.")


def undo_impossible(label: str) -> Message:
    """A step returning traffic after a stopped rollout that has nothing to return to."""
    return thread_reply(f"↩️ {escape(label)}: no previous release")


def undo_step(label: str, *, ok: bool, error: str | None) -> Message:
    """A step returning traffic after a stopped rollout: done, or the provider's error."""
    return thread_reply(f"↩️ {escape(label)}: {'done' if ok else escape(error or 'failed')}")


def rollback_step(label: str, *, ok: bool) -> Message:
    return thread_reply(f"{'✅' if ok else '❌'} {escape(label)}")


def rolled_back_to(version: str, by: str, release_id: int) -> Message:
    """In the undone release's thread: who rolled it back, to what, by which release."""
    return thread_reply(f"↩️ Rolled back to {escape(version)} by {user(by)} (release #{release_id}).")


def back_on(env: str, version: str) -> Message:
    """In a rollback's own thread, once it has run."""
    return thread_reply(f"↩️ {escape(env)} is back on {escape(version)}.")


def rollback_asked(by: str, target: str, release_id: int) -> Message:
    """In the thread of the release to undo: someone asked for rollback release ``release_id``."""
    return thread_reply(f"↩️ {user(by)} asked to roll back to {escape(target)} (release #{release_id}).")


def manifest_committed(sha: str) -> Message:
    return thread_reply(f"📄 Release manifest committed as `{sha[:12]}`.")


def manifest_failed(error: str) -> Message:
    return thread_reply(f"⚠️ Could not commit the release manifest: {escape(error)}")


def checks_scheduled(due: Iterable[datetime], zone: ZoneInfo) -> Message:
    """When the post-release checks run: each distinct time once, in order."""
    times = ", ".join(sorted({when(at, zone) for at in due}))
    return thread_reply(f"🗓️ Post-release checks scheduled: {times}.")


def checks_cancelled(count: int, why: str) -> Message:
    """``why`` is plain text (a version, a release number), escaped here."""
    return thread_reply(f"🗓️ {count} pending check(s) cancelled: {escape(why)}.")


def auto_rollback() -> Message:
    return thread_reply("❌ A check failed: rolling back automatically.")
