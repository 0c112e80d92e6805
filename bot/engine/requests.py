"""Release requests: validate → gate (window, checklist, admission) → approval or lock → start the run."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from bot.config import Config
from bot.core.checklist import ChecklistResult
from bot.core.grammar import Command
from bot.core.models import ApprovalKind, Candidate, Release, ReleaseKind, ReleaseState
from bot.core.notes import build_release_notes
from bot.engine.admitting import Reads, facts, read, refusal_words
from bot.engine.approvals import Approvals
from bot.engine.base import Actor, Reply
from bot.engine.errors import UserError
from bot.engine.gatekeeper import Context, Gatekeeper
from bot.engine.gates import Gates, Plan, window_item
from bot.engine.runner import Rollouts
from bot.engine.story import Story, Tasks
from bot.policy.admission import Kind, PlanFacts, Stage, admit
from bot.policy.permissions import Action
from bot.ports import SourceLookup
from bot.sources.base import SourceError
from bot.store import LockHeld, Store
from bot.views import requests as view
from bot.views.checklist import checklist_fixes
from bot.views.lock import lock_refusal

log = logging.getLogger("release_bot.engine")


@dataclass(frozen=True)
class Started:
    """The release passed its gates, took the environment's lock and is running."""

    release: Release


@dataclass(frozen=True)
class AwaitingApproval:
    """The release is recorded and its approval requests are posted; it runs once they are granted."""

    release: Release


Requested = Started | AwaitingApproval


class Releases:
    """`/release <env> [version]`, `deploy`, `promote`, and Retry of an interrupted release."""

    def __init__(
        self,
        *,
        config: Config,
        story: Story,
        tasks: Tasks,
        gate: Gatekeeper,
        gates: Gates,
        sources: SourceLookup,
        approvals: Approvals,
        rollouts: Rollouts,
    ) -> None:
        self.config = config
        self.db = story.db
        self.story = story
        self.tasks = tasks
        self.gate = gate
        self.gates = gates
        self.sources = sources
        self.approvals = approvals
        self.rollouts = rollouts

    # --- validation -------------------------------------------------------------------------------
    async def plan(self, actor: Actor, cmd: Command) -> tuple[Plan, Reads]:
        """The request validated, with every row its gates decide on (read in one round trip)."""
        assert cmd.service is not None and cmd.env is not None
        service, env = cmd.service, cmd.env
        pipeline = self.config.services[service].pipeline
        if env not in pipeline:
            raise UserError(view.not_in_pipeline(env, service, pipeline))
        previous = self.config.previous_stage(service, env)
        kind = ReleaseKind.DEPLOY
        source_env: str | None = None
        version = cmd.version
        if version is None:  # promote what the previous (or named) stage runs
            source_env = cmd.source_env or previous
            if source_env is None:
                raise UserError(view.first_stage(env, service))
            if source_env not in pipeline or pipeline.index(source_env) >= pipeline.index(env):
                raise UserError(view.promote_backwards(pipeline))
            running = await self.db.env_state(service, source_env)
            if running is None:
                raise UserError(view.nothing_to_promote(source_env, env))
            version, kind = running.version, ReleaseKind.PROMOTE
        wanted = version
        reads = await self.db.unit(
            lambda store: read(store, service, env, wanted, previous=previous, ask_duplicates=True)
        )
        candidate = reads.candidate
        if candidate is None:
            recent = await self.db.candidates(service, 5)
            raise UserError(view.unknown_candidate(version, service, [c.version for c in recent]))
        if previous is not None and not reads.passed_previous:
            raise UserError(view.not_passed_previous(version, previous, env))
        current = reads.current
        if current is not None and current.version == version:
            raise UserError(view.already_runs(env, version, current.since, self.config.zone))
        # Asked after the plan's own checks, so a bad command is explained the same way to everyone.
        await self.gate.require(Action(cmd.name), actor.user, env, Context(system=actor.system))
        return Plan(service, env, version, kind, source_env, candidate, current), reads

    async def release_notes(self, plan: Plan, replaced: Candidate | None) -> dict[str, Any]:
        """Notes for what this release changes since the version it replaces (``replaced``), or why there
        are none."""
        source = self.sources(plan.service)
        if source is None:
            return {"unavailable": "no repository configured for this service"}
        base = replaced.commit if replaced is not None and plan.current is not None else None
        try:
            commits = await source.commits_between(base, plan.candidate.commit)
        except SourceError as exc:
            return {"unavailable": str(exc)}
        except Exception as exc:  # an unreachable source must never stop a release by crashing it
            log.exception("release notes failed")
            return {"unavailable": f"the commit source failed ({type(exc).__name__})"}
        pr_url_base = source.pr_url_base
        # Grouping a long range takes ~100 ms at 10k commits: build and serialise off the event loop.
        return await asyncio.to_thread(lambda: build_release_notes(commits, pr_url_base=pr_url_base).to_dict())

    # --- the request ---------------------------------------------------------------------------------
    async def _create_release(
        self, actor: Actor, plan: Plan, state: ReleaseState, *, take_lock: bool, audit: dict[str, Any], **fields: Any
    ) -> Release:
        """Record ``plan`` as a release in ``state`` with its audit entry, in one round trip; with ``take_lock``
        the env's lock too, or LockHeld (and nothing is written)."""
        now = self.story.now()

        def create(store: Store) -> Release:
            release = store.create_release(
                service=plan.service,
                env=plan.env,
                version=plan.version,
                kind=plan.kind,
                state=state,
                requested_by=actor.user,
                now=now,
                take_lock=take_lock,
                source_env=plan.source_env,
                **fields,
            )
            store.audit(
                actor=actor.user,
                action="release.requested",
                subject=f"release:{release.id}",
                now=now,
                detail=audit,
                request_id=actor.request_id,
            )
            return release

        return await self.db.unit(create)

    async def request_release(self, actor: Actor, cmd: Command) -> Requested:
        """`/release <env> [version]`, `deploy`, `promote`: refuse with a reason, ask approval, or start."""
        plan, reads = await self.plan(actor, cmd)
        environment = self.config.environments[plan.env]
        zone = self.config.zone
        decision = self.gates.windows.decide(plan.env, self.story.now(), list(reads.freezes))
        notes = await self.release_notes(plan, reads.running)
        rollback = self.gates.rollback_plan(plan.env, reads.last_healthy)
        checklist = self.gates.evaluate(plan, notes, rollback, reads)
        blocked = not decision.open or not checklist.passed
        # What break-glass cannot carry (stale, downgrade, busy, held, a twin waiting) is refused before anyone
        # is asked to approve; a closed window and an unsatisfied checklist are the ones `--force` may carry.
        facts_of_plan = PlanFacts(
            service=plan.service,
            env=plan.env,
            version=plan.version,
            kind=Kind.FORWARD,
            replaces=plan.current.version if plan.current else None,
            requester=actor.user,
        )
        found = facts(reads, forward=True, window=decision, checklist=checklist)
        hard = admit(facts_of_plan, found.world, Stage.REQUEST).hard
        if hard:
            raise UserError("\n".join(refusal_words(r, facts_of_plan, found, zone) for r in hard))
        if blocked and cmd.force_reason is None:
            images, components = plan.candidate.components, self.config.services[plan.service].components
            fixes = checklist_fixes(checklist, plan.service, images, components)
            raise UserError(view.needs_break_glass(plan.env, decision, checklist, zone, fixes))
        force_reason = cmd.force_reason if blocked else None  # `--force` on a request nothing blocks is no break-glass
        recorded = (
            ChecklistResult((window_item(decision), *checklist.items))
            if force_reason is not None and not decision.open
            else checklist
        )
        fields: dict[str, Any] = {
            "checklist": recorded.to_dict(),
            "notes": notes,
            "rollback_target": rollback.target_version,
            "rollback_method": rollback.method,
        }
        required = self.config.approvals_required(plan.env, decision.at)  # `approvals.when`: at the request's time
        needs_approval = force_reason is not None or required > 0
        if needs_approval:
            release = await self._create_release(
                actor,
                plan,
                ReleaseState.AWAITING_APPROVAL,
                take_lock=False,
                audit={"version": plan.version, "env": plan.env, "force_reason": force_reason},
                **fields,
                force_reason=force_reason,
            )
            release = await self.story.post_parent(release)
            # Break-glass adds an on-call approver (not the requester); it never replaces the approvals the
            # environment asks of every release, so both requests must be granted before it runs.
            if required > 0:
                await self.approvals.open_approval(
                    kind=ApprovalKind.RELEASE,
                    service=plan.service,
                    env=plan.env,
                    requester=actor,
                    required=required,
                    groups=list(environment.approvals.from_ or []),
                    subject={"release_id": release.id},
                    title=f"Release of {plan.service} {plan.version} to {plan.env}",
                    detail_lines=[],
                )
            if force_reason is not None:
                await self.approvals.open_approval(
                    kind=ApprovalKind.FORCE,
                    service=plan.service,
                    env=plan.env,
                    requester=actor,
                    required=1,
                    groups=["oncall"],
                    subject={"release_id": release.id},
                    title=f"Break-glass release of {plan.service} {plan.version} to {plan.env}",
                    detail_lines=view.break_glass_details(force_reason, plan.env, decision, checklist, zone),
                )
            return AwaitingApproval(release)
        try:
            release = await self._create_release(
                actor,
                plan,
                ReleaseState.QUEUED,
                take_lock=True,
                audit={"version": plan.version, "env": plan.env},
                **fields,
            )
        except LockHeld as held:
            raise UserError(lock_refusal(held.lock, zone)) from None
        release = await self.story.post_parent(release)
        self.tasks.spawn(self.rollouts.run_release(release), f"release-{release.id}")
        return Started(release)

    async def retry(self, actor: Actor, release_id: int) -> Reply:
        """Retry an interrupted release: a new release of the same version, through the same gates.

        A release whose deploy step a restart left running is retried through the gates too, so that admission
        says why it must wait (that step runs until it ends or times out; never two deploys of one env at once).
        Answers with a Reply rather than a result: the Retry button reaches it through Recovery and
        :meth:`Story.once`, which speak Reply.
        """
        release = await self.db.get_release(release_id)
        if release is None:
            raise UserError(view.NOT_RETRYABLE)
        if release.state is not ReleaseState.INTERRUPTED:
            left = await self.db.left_deploy_run(release.service, release.env)
            if left is None or left.release_id != release.id:
                raise UserError(view.NOT_RETRYABLE)
        await self.gate.require(Action.RELEASE_RETRY, actor.user, release.env)
        cmd = Command(name="deploy", service=release.service, env=release.env, version=release.version)

        async def requested() -> Reply:
            result = await self.request_release(actor, cmd)
            shown = view.awaiting_approval if isinstance(result, AwaitingApproval) else view.started
            return Reply(shown(result.release))

        # Refused (busy, window closed…): nothing started, so the button works again later.
        return await self.story.once(f"retry:{release_id}", view.RETRY_TAKEN, requested)
