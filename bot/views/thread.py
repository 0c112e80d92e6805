"""A release's thread as it is told: each step, outcome, check schedule and rollback, one reply each. Pure.

Callers pass plain data (step labels, versions, environments, errors, user IDs, times); everything that
came from config, a provider or a person is escaped here, and only user IDs the bot stored become mentions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from bot.core.models import ReleaseState
from bot.core.notes import ReleaseNotes
from bot.core.windows import WindowDecision
from bot.views.mrkdwn import escape
from bot.views.notes import notes_blocks
from bot.views.render import STATE_ICON, Message, output_tail_block, section, thread_reply, user, when
from bot.views.windows import window_mrkdwn

StepEnd = Literal["before", "while_down", "now"]

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
    "outcome_unknown",
    "outcome_waited",
    "outcome_waited_notice",
    "outcome_waited_why",
    "release_notes",
    "rollback_asked",
    "rollback_step",
    "rolled_back_to",
    "step_done",
    "step_ended",
    "step_ended_partway",
    "step_left_running",
    "step_unproven",
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


# --- deploy steps left by a restart (bot/engine/outcomes.py) ---------------------------------------------


def step_left_running(
    label: str, env: str, what: str, *, started: datetime, until: datetime, zone: ZoneInfo
) -> Message:
    """A step the previous process of the bot started still runs: its env stays locked while the bot waits.
    ``what`` names it (its process group, its remote run)."""
    return thread_reply(
        f"⏳ The bot restarted while *{escape(label)}* was running, and it still runs ({escape(what)}, started "
        f"{when(started, zone)}). {escape(env)} stays locked: the bot waits for it, until {when(until, zone)} at "
        "the latest (then it stops it), and records its outcome here. Retry and new releases wait until then."
    )


def step_ended(label: str, how: str, state: ReleaseState, *, ended: StepEnd, tail: str | None) -> Message:
    """A step a restart cut the bot off from has ended: how (``how``: "exit status 0", a provider's error), and
    the release's outcome as recorded from it. ``ended``: before the restart (only its release's outcome was
    not recorded), while the bot was down, or just now (the bot followed it)."""
    said = {
        "before": "had ended before the bot restarted, and its release's outcome was not recorded yet",
        "while_down": "was running when the bot restarted and finished while it was down",
        "now": "was running when the bot restarted and has now ended",
    }[ended]
    text = (
        f"{STATE_ICON[state]} The deploy step *{escape(label)}* {said}: {escape(how)}. "
        f"The release is recorded *{state.value}*."
    )
    blocks = [section(text)]
    if state is ReleaseState.FAILED and tail and tail.strip():
        blocks.append(output_tail_block(tail))
    return Message(text=text, blocks=blocks)


def step_ended_partway(label: str, how: str) -> str:
    """Why a release is interrupted after a restart: its step ended well, but the rollout has more steps."""
    return (
        f"The bot restarted while *{escape(label)}* was running; it has ended ({escape(how)}), but the rest of the "
        "rollout did not run."
    )


def step_unproven(label: str, reason: str, env: str) -> str:
    """Why a release is interrupted after a restart: its step ended in a way nothing proves."""
    return f"The bot restarted while *{escape(label)}* was running. {outcome_unknown(label, reason, env)}"


def outcome_unknown(label: str, reason: str, env: str) -> str:
    """A release's last step ended in a way nothing proves (no exit status, no remote run to ask)."""
    return (
        f"Its step *{escape(label)}* has ended, but *its outcome is unknown* ({escape(reason)}): check "
        f"{escape(env)} before you Retry or Roll back."
    )


# --- outcomes the store could not record when they happened ----------------------------------------------


def outcome_waited(state: ReleaseState, *, since: datetime, error: str, zone: ZoneInfo, tail: str | None) -> Message:
    """In the release's thread, once its outcome could be recorded after the store refused writes."""
    text = (
        f"⚠️ The bot could not write to its database from {when(since, zone)} ({escape(error)}), so this "
        f"release's outcome waited. Writes work again: it is recorded *{state.value}*."
    )
    blocks = [section(text)]
    if state is ReleaseState.FAILED and tail and tail.strip():
        blocks.append(output_tail_block(tail))
    return Message(text=text, blocks=blocks)


def outcome_waited_notice(
    service: str, version: str, env: str, release_id: int, state: ReleaseState, *, since: datetime, zone: ZoneInfo
) -> Message:
    """In the channel: a release's outcome was recorded late because the store refused writes."""
    return thread_reply(
        f"⚠️ release-bot could not write to its database from {when(since, zone)}. The outcome of "
        f"{escape(service)} {escape(version)} to {escape(env)} (release #{release_id}) waited and is recorded now: "
        f"*{state.value}*. See the release's thread."
    )


def outcome_waited_why(service: str, version: str, env: str, *, since: datetime, error: str, zone: ZoneInfo) -> str:
    """Why a release is interrupted after the store refused writes: it stopped where it could not write."""
    return (
        f"The bot could not write to its database from {when(since, zone)} ({escape(error)}) while "
        f"{escape(service)} {escape(version)} was being released to {escape(env)}, so the release stopped there."
    )
