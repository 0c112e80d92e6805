"""What on-call is asked about a check, and what pressing its buttons says. Pure.

On-call is pinged by the members of the rollback approvers' groups (from config, so only Slack IDs
become mentions); versions, step labels and check summaries are escaped here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.verdicts import Measurement, Verdict, format_value
from bot.core.watch import Tally
from bot.views.mrkdwn import escape
from bot.views.render import (
    CHECK_ICON,
    Message,
    check_buttons,
    context,
    group_mentions,
    info,
    section,
    thread_reply,
    user,
    when,
)

__all__ = [
    "acknowledged",
    "already_decided",
    "already_noted",
    "check_ping",
    "checks_planned",
    "continuing",
    "continuing_reply",
    "hold_choices",
    "hold_message",
    "hold_rolled_back",
    "noted_reply",
    "release_moved_on",
    "rolling_back_reply",
    "still_checking",
    "watch_reply",
]


def already_noted() -> str:
    """Looks good / Dismiss under a check's result, pressed again."""
    return "already noted."


def still_checking() -> str:
    """A button under a rollout whose checks between steps have not answered yet."""
    return "this rollout is still running its checks; wait for their result."


def hold_choices() -> str:
    """Dismiss under a rollout on hold: it has to go on or go back."""
    return "a rollout on hold can only continue (Looks good) or roll back."


def already_decided() -> str:
    """A second decision on the same hold."""
    return "someone already decided on this hold; nothing more was done."


def release_moved_on(state: str) -> str:
    """A check's button pressed under a release that is neither verifying nor succeeded any more."""
    return f"that release is {state} now; nothing to do."


def check_ping(
    groups: Mapping[str, Sequence[str]], approvers: Sequence[str], *, release_id: int, version: str, verdict: Verdict
) -> Message:
    """A post-release check failed or was inconclusive: ping the ``approvers`` groups, with the buttons."""
    what = "failed" if verdict is Verdict.FAIL else "is inconclusive"
    return Message(
        text=f"A post-release check {what}",
        blocks=[
            section(f"{group_mentions(groups, approvers)} a post-release check {what} for {escape(version)}."),
            check_buttons(release_id, verdict.value),
        ],
    )


def hold_message(
    groups: Mapping[str, Sequence[str]],
    approvers: Sequence[str],
    *,
    release_id: int,
    version: str,
    step: str,
    reasons: str,
) -> Message:
    """Checks between rollout steps were inconclusive: the rollout holds at ``step`` until on-call decides."""
    return Message(
        text="The rollout is on hold: checks are inconclusive",
        blocks=[
            section(
                f"⏸️ {group_mentions(groups, approvers)} the rollout of {escape(version)} is on hold at "
                f"{escape(step)}: {escape(reasons)}. *Looks good* continues with the next step; "
                "*Roll back* returns traffic to the previous release."
            ),
            check_buttons(release_id, Verdict.INCONCLUSIVE.value),
        ],
    )


def acknowledged(by: str, *, looks_good: bool) -> Message:
    """In the thread: who looked at a check's result and said it looks good, or dismissed it."""
    return thread_reply(f"👍 {user(by)}: {_verdict_word(looks_good)}.")


def noted_reply(*, looks_good: bool) -> Message:
    """What the person who pressed Looks good / Dismiss under a check's result is told."""
    return info(f"Noted: {_verdict_word(looks_good)}.")


def _verdict_word(looks_good: bool) -> str:
    return "looks good" if looks_good else "dismissed"


def continuing(by: str, step: str) -> Message:
    """In the thread: on-call let a held rollout go on past ``step``."""
    return thread_reply(f"👍 {user(by)}: looks good — continuing after {escape(step)}.")


def continuing_reply(version: str) -> Message:
    return info(f"Continuing the rollout of {escape(version)}.")


def hold_rolled_back(by: str, step: str) -> Message:
    """In the thread: on-call chose to roll a held rollout back at ``step``."""
    return thread_reply(f"↩️ {user(by)} chose to roll back at {escape(step)}.")


def rolling_back_reply(version: str) -> Message:
    return info(f"Rolling back the rollout of {escape(version)}.")


# --- watch windows (bot/core/watch.py) ----------------------------------------------------------------


def checks_planned(
    due: Iterable[datetime], windows: Sequence[tuple[str, str, str, datetime]], zone: ZoneInfo
) -> Message:
    """When the post-release checks run: each distinct offset time once, in order, and each watch window as
    (check, every, for, until) — one line, not a time per tick."""
    lines = []
    times = sorted({when(at, zone) for at in due})
    if times:
        lines.append(f"🗓️ Post-release checks scheduled: {', '.join(times)}.")
    for name, every, window, until in windows:
        lines.append(f"👀 *{escape(name)}*: every {escape(every)} for {escape(window)}, until {when(until, zone)}.")
    text = "\n".join(lines)
    return Message(text=text, blocks=[section(text)])


def watch_reply(
    tally: Tally, *, every: str, window: str, last_at: str | None, latest: Measurement | None = None, of: int = 1
) -> Message:
    """A watch window's one reply, edited in place by every tick: the running tally and the latest value.

    ``latest`` is the tick being measured when it could not be read yet (``latest.error`` set: shown with its
    attempt of ``of``), or the tick just judged; ``last_at`` is the offset of the latest measured tick.
    """
    verdict = tally.verdict
    name = escape(tally.check)
    counted = f"{tally.measured}/{tally.planned}"
    limit = f" (limit {tally.failure_limit})" if tally.failure_limit else ""
    counts = [f"{tally.passed} pass", f"{tally.failed} fail{limit}"]
    if tally.inconclusive:
        counts.append(f"{tally.inconclusive} inconclusive")
    last = f"last {format_value(tally.last)}" + (f" ({last_at})" if last_at else "")
    if verdict is Verdict.FAIL:
        word = "FAIL"
    elif tally.ended and verdict is not None:
        word = verdict.value.upper()
    else:
        word = "watching" if verdict is None else f"{verdict.value.upper()} so far"
    icon = (
        CHECK_ICON.get(verdict, "👀") if verdict is not None and (tally.ended or verdict is not Verdict.PASS) else "👀"
    )
    blocks = [
        section(
            f"{icon} *{name}* every {escape(every)} for {escape(window)}: *{word}* — {counted} measured · "
            f"{', '.join(counts)} · {escape(last)}"
        )
    ]
    notes = []
    if latest is not None and latest.error is not None:
        attempt = f"attempt {latest.attempts} of {of}"
        notes.append(f"Metrics unavailable — {attempt}: {escape(latest.error)}")
    elif latest is not None:
        notes.append(escape(latest.summary) + (f" — {escape(latest.detail)}" if latest.detail else ""))
    if verdict is Verdict.FAIL:
        why = f"more than {tally.failure_limit} failed" if tally.failure_limit else "a measurement failed"
        notes.append(f"Failed: {why}; the rest of the window is cancelled.")
    elif tally.ended:
        notes.append("Window over.")
    if notes:
        blocks.append(context(" ".join(notes)))
    if latest is not None and latest.query:
        blocks.append(context(f"query: `{escape(latest.query)[:2800]}`"))
    text = f"{tally.check}: {counted} {word} · {last}"
    return Message(text=text, blocks=blocks)
