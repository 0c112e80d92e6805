"""Admission's refusals in words, each with the way forward. Pure.

The decision is :func:`bot.policy.admission.admit`'s; a request, a rollback and the start of a run all say
its refusals with these words. Window and checklist words come from their own views.
"""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from bot.core.models import DeployRun, Lock
from bot.policy.admission import Code, PlanFacts, Refusal
from bot.views.lock import lock_refusal
from bot.views.mrkdwn import escape
from bot.views.render import when

__all__ = ["refusal_text"]


def refusal_text(
    refusal: Refusal,
    plan: PlanFacts,
    runs: str | None,
    locks: Sequence[Lock],
    zone: ZoneInfo,
    *,
    left: DeployRun | None = None,
) -> str:
    """One refusal as mrkdwn. ``runs``: the version the env runs now; ``locks``: the env's locks, whose
    holder, reason and since a busy or manually locked env is explained with; ``left``: the deploy step a
    restart left running there."""
    env, version, running = plan.env, escape(plan.version), escape(runs or "nothing")
    code = refusal.code
    if code is Code.UNKNOWN_CANDIDATE:
        return f"{version} is not a known {plan.service} candidate any more."
    if code is Code.ALREADY_RUNS:
        return f"{env} already runs {version}."
    if code is Code.STALE:
        was = escape(plan.replaces or "nothing")
        return (
            f"this plan is stale: it was to replace {was} in {env}, but {env} now runs {running}. "
            f"Ask again if it is still wanted: `/release {env} {version}`."
        )
    if code is Code.DOWNGRADE:
        return (
            f"{version} is older than {running}, which {env} runs now. Going back is a rollback: "
            f"`/release rollback {env} to {version}`."
        )
    if code is Code.UNHEALTHY_TARGET:
        return (
            f"{version} was not healthy in {env} (it never succeeded there, was rolled back, or failed a check), "
            f"so a rollback may not return to it. To ship it anyway, release it through the gates: "
            f"`/release {env} {version}`."
        )
    if code is Code.DUPLICATE:
        return (
            f"a request for {version} to {env} is already waiting for approval (release #{refusal.release_id}); "
            "approve or deny that one."
        )
    if code is Code.HELD:
        return (
            f"{plan.service} {env} has a rollout on hold (release #{refusal.release_id}): decide it with its "
            "*Looks good* or *Roll back* buttons in that release's thread."
        )
    if code is Code.DEPLOY_LEFT:
        step = f"*{escape(left.step)}*, started {when(left.started_at, zone)}" if left is not None else "a deploy step"
        until = f", until {when(left.deadline_at, zone)} at the latest" if left is not None else ""
        return (
            f"{plan.service} {env} is still being deployed: {step} (release #{refusal.release_id}) was running when "
            f"the bot restarted, and it still runs. The bot waits for it{until}, and records its outcome in that "
            "release's thread; ask again once it has ended."
        )
    if code in (Code.BUSY, Code.MANUAL_LOCK):
        manual = code is Code.MANUAL_LOCK
        lock = next((lk for lk in locks if (lk.kind == "manual") == manual), None)
        if lock is not None:
            return lock_refusal(lock, zone)
        return f"{plan.service} {env} is busy. Try again once it finishes."
    if code is Code.WINDOW:
        return f"{env}'s deployment window is closed."
    return f"{env}'s checklist is not satisfied."
