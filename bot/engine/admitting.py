"""Gathering the facts admission decides on, and saying its refusals. The decision itself is pure
(:func:`bot.policy.admission.admit`); this is the I/O around it, shared by the request and the start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.checklist import ChecklistResult
from bot.core.models import Candidate, EnvState, Lock, Release, ReleaseKind, ReleaseState
from bot.core.mrkdwn import escape
from bot.core.windows import WindowDecision
from bot.policy.admission import Code, Kind, LockFacts, PlanFacts, Refusal, World
from bot.slack.render_lock import lock_refusal
from bot.store import AsyncStore


@dataclass(frozen=True)
class Facts:
    """The world now, plus the locks themselves (their words need holder, reason and since)."""

    world: World
    locks: tuple[Lock, ...]


def plan_facts(release: Release) -> PlanFacts:
    """What a stored release asked for and assumed (``previous_version`` is what ran when it was asked)."""
    return PlanFacts(
        service=release.service,
        env=release.env,
        version=release.version,
        kind=Kind.ROLLBACK if release.kind is ReleaseKind.ROLLBACK else Kind.FORWARD,
        replaces=release.previous_version,
        requester=release.requested_by,
        overridden=frozenset(str(i["item"]) for i in release.checklist if i.get("overridden_by")),
        own_release_id=release.id,
        undoes_release=release.rollback_of is not None,
    )


async def gather(
    db: AsyncStore,
    service: str,
    env: str,
    version: str,
    *,
    current: EnvState | None,
    candidate: Candidate | None,
    window: WindowDecision | None,
    checklist: ChecklistResult | None,
    ask_duplicates: bool,
) -> Facts:
    """Read what admission needs that the caller does not hold yet: the candidate running now (forward
    releases compare ages), the locks, a hold, a waiting twin. ``current`` and ``candidate`` are the rows
    the caller already read (what runs in ``env`` now, the plan's candidate)."""
    sync = db.sync
    # What runs now is only compared with the plan's candidate (is the plan older?).
    running = await db.run(sync.get_candidate, service, current.version) if current and candidate else None
    locks = tuple(
        lock
        for lock in (await db.run(sync.lock_of, service, env), await db.run(sync.manual_lock, service, env))
        if lock
    )
    held = None
    for lock in locks:
        if lock.release_id is not None and await _is_held(db, lock.release_id):
            held = lock.release_id
    duplicate = await db.run(sync.awaiting_approval, service, env, version) if ask_duplicates else None
    world = World(
        runs=current.version if current else None,
        candidate_known=candidate is not None,
        candidate_order=candidate.created_at.timestamp() if candidate else None,
        running_order=running.created_at.timestamp() if running else None,
        target_healthy=await db.run(sync.healthy_in, service, env, version),
        window=window,
        locks=tuple(LockFacts(lk.holder, lk.reason, lk.kind == "manual", lk.release_id) for lk in locks),
        checklist=checklist,
        pending_duplicate=duplicate.id if duplicate else None,
        held_release=held,
    )
    return Facts(world, locks)


HELD = "held: "  # the release event a rollout on hold ends with, followed by the step it holds at


def held_step(events: list[dict[str, Any]]) -> str | None:
    """The step a rollout is held at (its last event says so), or None while it is not on hold."""
    last = str(events[-1]["detail"]) if events else ""
    return last.removeprefix(HELD) if last.startswith(HELD) else None


async def _is_held(db: AsyncStore, release_id: int) -> bool:
    release = await db.run(db.sync.get_release, release_id)
    if release is None or release.state is not ReleaseState.VERIFYING:
        return False
    return held_step(await db.run(db.sync.release_events, release_id)) is not None


def refusal_text(refusal: Refusal, plan: PlanFacts, facts: Facts, zone: ZoneInfo) -> str:
    """One refusal as mrkdwn, with the way forward. Window and checklist words come from their own views."""
    env, version, runs = plan.env, escape(plan.version), escape(facts.world.runs or "nothing")
    code = refusal.code
    if code is Code.UNKNOWN_CANDIDATE:
        return f"{version} is not a known {plan.service} candidate any more."
    if code is Code.ALREADY_RUNS:
        return f"{env} already runs {version}."
    if code is Code.STALE:
        was = escape(plan.replaces or "nothing")
        return (
            f"this plan is stale: it was to replace {was} in {env}, but {env} now runs {runs}. "
            f"Ask again if it is still wanted: `/release {env} {version}`."
        )
    if code is Code.DOWNGRADE:
        return (
            f"{version} is older than {runs}, which {env} runs now. Going back is a rollback: "
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
    if code in (Code.BUSY, Code.MANUAL_LOCK):
        manual = code is Code.MANUAL_LOCK
        lock = next((lk for lk in facts.locks if (lk.kind == "manual") == manual), None)
        if lock is not None:
            return lock_refusal(lock, zone)
        return f"{plan.service} {env} is busy. Try again once it finishes."
    if code is Code.WINDOW:
        return f"{env}'s deployment window is closed."
    return f"{env}'s checklist is not satisfied."
