"""Gathering the facts admission decides on. The decision itself is pure (:func:`bot.policy.admission.admit`),
its refusals' words a view (:mod:`bot.views.admission`); this is the I/O around them, shared by the request,
the rollback and the start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.checklist import ChecklistResult
from bot.core.models import Candidate, DeployRun, EnvState, Lock, Release, ReleaseKind, ReleaseState
from bot.core.windows import AdhocFreeze, WindowDecision
from bot.policy.admission import Kind, LockFacts, PlanFacts, Refusal, World
from bot.store import Store
from bot.views import admission as admission_view


@dataclass(frozen=True)
class Facts:
    """The world now, plus the locks themselves (their words need holder, reason and since) and the deploy step a
    restart left running (its words need its step and times)."""

    world: World
    locks: tuple[Lock, ...]
    left: DeployRun | None = None


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


@dataclass(frozen=True)
class Reads:
    """Every row a release decision reads, read in one round trip (see :func:`read`)."""

    current: EnvState | None  # what runs in the env now
    colour: str | None  # the colour serving now (blue/green)
    candidate: Candidate | None  # the plan's candidate
    running: Candidate | None  # the candidate of what runs now (its commit starts the notes; its age compares)
    passed_previous: bool  # the version succeeded in the previous stage (True when there is none)
    freezes: tuple[AdhocFreeze, ...]  # ad-hoc freezes of this service (the window policy picks the env's)
    last_healthy: Release | None  # the newest healthy release of another version (the rollback plan)
    tests: dict[str, dict[str, Any]]
    scans: dict[str, dict[str, Any]]  # component -> its image's scan ('' for one stored for the whole candidate)
    locks: tuple[Lock, ...]
    held: int | None  # the release whose rollout is on hold here
    duplicate: int | None  # a request for the same version waiting for approval
    target_healthy: bool  # the version ran here and stayed healthy (a rollback may return to it)
    left: DeployRun | None = None  # a deploy step a restart left running here (bot/engine/outcomes.py)


def read(store: Store, service: str, env: str, version: str, *, previous: str | None, ask_duplicates: bool) -> Reads:
    """The rows a request or a start decides on; run inside one unit (``db.unit``): one round trip."""
    current = store.env_state(service, env)
    locks = tuple(lock for lock in (store.lock_of(service, env), store.manual_lock(service, env)) if lock)
    held = None
    for lock in locks:
        holder = store.get_release(lock.release_id) if lock.release_id is not None else None
        if holder is not None and holder.state is ReleaseState.VERIFYING and holder.held_step is not None:
            held = holder.id
    duplicate = store.awaiting_approval(service, env, version) if ask_duplicates else None
    return Reads(
        current=current,
        colour=store.env_colour(service, env),
        candidate=store.get_candidate(service, version),
        running=store.get_candidate(service, current.version) if current else None,
        passed_previous=previous is None or store.succeeded_in(service, previous, version),
        freezes=tuple(store.adhoc_freezes(service).get(service, [])),
        last_healthy=store.last_healthy(service, env, before_id=None, not_version=version),
        tests=store.tests(service, version),
        scans=store.scans(service, version),
        locks=locks,
        held=held,
        duplicate=duplicate.id if duplicate else None,
        target_healthy=store.healthy_in(service, env, version),
        left=store.left_deploy_run(service, env),
    )


def facts(
    reads: Reads,
    *,
    forward: bool,
    window: WindowDecision | None,
    checklist: ChecklistResult | None,
) -> Facts:
    """The world admission decides on, from the rows read. A rollback compares no ages and has no candidate
    to know: it returns to what ran there, candidate record or not."""
    candidate = reads.candidate if forward else None
    running = reads.running if candidate is not None else None
    world = World(
        runs=reads.current.version if reads.current else None,
        candidate_known=candidate is not None,
        candidate_order=candidate.created_at.timestamp() if candidate else None,
        running_order=running.created_at.timestamp() if running else None,
        target_healthy=reads.target_healthy,
        window=window,
        locks=tuple(LockFacts(lk.holder, lk.reason, lk.kind == "manual", lk.release_id) for lk in reads.locks),
        checklist=checklist,
        pending_duplicate=reads.duplicate,
        held_release=reads.held,
        deploy_left=reads.left.release_id if reads.left else None,
    )
    return Facts(world, reads.locks, reads.left)


def refusal_words(refusal: Refusal, plan: PlanFacts, found: Facts, zone: ZoneInfo) -> str:
    """A refusal in words (:func:`bot.views.admission.refusal_text`), from the facts it was decided on."""
    return admission_view.refusal_text(refusal, plan, found.world.runs, found.locks, zone, left=found.left)
