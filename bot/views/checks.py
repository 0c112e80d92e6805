"""What on-call is asked about a check, and what pressing its buttons says. Pure.

On-call is pinged by the members of the rollback approvers' groups (from config, so only Slack IDs
become mentions); versions, step labels and check summaries are escaped here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.core.verdicts import Verdict
from bot.views.mrkdwn import escape
from bot.views.render import Message, check_buttons, group_mentions, info, section, thread_reply, user

__all__ = [
    "acknowledged",
    "already_decided",
    "already_noted",
    "check_ping",
    "continuing",
    "continuing_reply",
    "hold_choices",
    "hold_message",
    "hold_rolled_back",
    "noted_reply",
    "release_moved_on",
    "rolling_back_reply",
    "still_checking",
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
