"""What someone asking for a rollback is told: by `/release rollback` or by a button under a release. Pure.

Refusals are mrkdwn sentences with the way forward (shown by ``render.refusal``); versions and a lock's
reason are escaped here, and only user IDs the bot stored become mentions.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.views.mrkdwn import escape
from bot.views.render import Message, info, user

__all__ = [
    "already_requested",
    "already_runs",
    "busy",
    "never_ran",
    "no_healthy_target",
    "not_admitted",
    "not_interrupted",
    "nothing_released",
    "replaced",
    "release_gone",
    "rolling_back",
    "waiting_for_approval",
    "waiting_rollback",
]


def release_gone() -> str:
    """A button under a release that is no longer stored."""
    return "that release no longer exists."


def already_requested() -> str:
    """A rollback button's second click: the first one's rollback is on its way (or waiting for approval)."""
    return "a rollback of this release was already requested."


def not_interrupted(state: str) -> str:
    """A button under an interrupted release, pressed once the release has moved on."""
    return f"that release is {state}; nothing to do."


def waiting_rollback(service: str, env: str, version: str, release_id: int) -> str:
    return (
        f"a rollback of {service} {env} to {escape(version)} is already waiting for approval "
        f"(release #{release_id}); approve or deny that one."
    )


def nothing_released(env: str) -> str:
    return f"nothing has been released to {env} yet, so there is nothing to roll back."


def no_healthy_target(env: str) -> str:
    return f"there is no earlier healthy release in {env} to roll back to."


def never_ran(target: str, env: str) -> str:
    return f"{escape(target)} never ran in {env}; a rollback target must have run there before."


def already_runs(env: str, target: str) -> str:
    return f"{env} already runs {escape(target)}."


def replaced(release_id: int, version: str, env: str, current: str) -> str:
    """A rollback button under release ``release_id`` after ``current`` replaced it: it would move ``current``."""
    return (
        f"release #{release_id} ({escape(version)}) no longer runs in {env}: "
        f"{escape(current)} does. To roll back what runs now: `/release rollback {env}`."
    )


def not_admitted(reasons: Sequence[str]) -> str:
    """Admission's refusals of the rollback, mrkdwn already, one a line."""
    return "\n".join(reasons)


def busy(service: str, env: str, holder: str, reason: str) -> str:
    return f"{service} {env} is busy: {user(holder)} holds it ({escape(reason)}). Try again once it finishes."


def waiting_for_approval(target: str) -> Message:
    return info(f"Rollback to {escape(target)} is waiting for on-call approval.")


def rolling_back(env: str, target: str, release_id: int) -> Message:
    return info(f"Rolling {env} back to {escape(target)} (release #{release_id}).")
