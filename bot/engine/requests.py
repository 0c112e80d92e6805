"""Release requests: validate → gate (window, checklist, admission) → approval or lock → start the run."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.config import Config
from bot.core.checklist import ChecklistResult
from bot.core.grammar import Command
from bot.core.models import ApprovalKind, Candidate, Release, ReleaseKind, ReleaseState
from bot.core.notes import build_release_notes
from bot.engine.admitting import Reads, facts, read, refusal_text
from bot.engine.approvals import Approvals
from bot.engine.base import Actor, Reply
from bot.engine.errors import UserError
from bot.engine.gatekeeper import Gatekeeper
from bot.engine.gates import Gates, Plan, window_item
from bot.engine.runner import Rollouts
from bot.engine.story import Story, Tasks
from bot.policy.admission import Kind, PlanFacts, Stage, admit
from bot.policy.permissions import Action
from bot.ports import SourceLookup
from bot.sources.base import SourceError
from bot.store import LockHeld, Store
from bot.views import render
from bot.views.checklist import checklist_lines
from bot.views.lock import lock_refusal
from bot.views.mrkdwn import escape
from bot.views.windows import window_mrkdwn

log = logging.getLogger("release_bot.engine")


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
            raise UserError(f"{env} is not in {service}'s pipeline ({' → '.join(pipeline)}).")
        previous = self.config.previous_stage(service, env)
        kind = ReleaseKind.DEPLOY
        source_env: str | None = None
        version = cmd.version
        if version is None:  # promote what the previous (or named) stage runs
            source_env = cmd.source_env or previous
            if source_env is None:
                raise UserError(f"{env} is {service}'s first stage: name a version, e.g. `/release {env} 1.4.2`.")
            if source_env not in pipeline or pipeline.index(source_env) >= pipeline.index(env):
                raise UserError(f"promote goes forward along the pipeline ({' → '.join(pipeline)}).")
            running = await self.db.env_state(service, source_env)
            if running is None:
                raise UserError(f"nothing runs in {source_env} yet, so there is nothing to promote to {env}.")
            version, kind = running.version, ReleaseKind.PROMOTE
        wanted = version
        reads = await self.db.unit(
            lambda store: read(store, service, env, wanted, previous=previous, ask_duplicates=True)
        )
        candidate = reads.candidate
        if candidate is None:
            recent = await self.db.candidates(service, 5)
            known = ", ".join(escape(c.version) for c in recent) or "none yet"
            raise UserError(
                f"{escape(version)} is not a known {service} candidate (recent: {known}). "
                "CI registers candidates with `POST /api/v1/candidates`."
            )
        if not reads.passed_previous:
            raise UserError(
                f"{escape(version)} has not been released to {previous} yet; {env} only gets versions that "
                f"passed {previous}. Run `/release {previous} {escape(version)}` first."
            )
        current = reads.current
        if current is not None and current.version == version:
            raise UserError(
                f"{env} already runs {escape(version)} (since {render.when(current.since, self.config.zone)})."
            )
        # Asked after the plan's own checks, so a bad command is explained the same way to everyone.
        await self.gate.require(Action(cmd.name), actor.user, env)
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

    async def request_release(self, actor: Actor, cmd: Command) -> Reply:
        """`/release <env> [version]`, `deploy`, `promote`: refuse with a reason, ask approval, or start."""
        plan, reads = await self.plan(actor, cmd)
        environment = self.config.environments[plan.env]
        blockers: list[str] = []  # mrkdwn, each already safe to show
        decision = self.gates.windows.decide(plan.env, self.story.now(), list(reads.freezes))
        if not decision.open:
            blockers.append(window_mrkdwn(decision, self.config.zone))
        notes = await self.release_notes(plan, reads.running)
        rollback = self.gates.rollback_plan(plan.env, reads.last_healthy)
        checklist = self.gates.evaluate(plan, notes, rollback, reads)
        if not checklist.passed:
            blockers.append(f"{plan.env}'s checklist is not satisfied:\n" + "\n".join(checklist_lines(checklist)))
        # What break-glass cannot carry (stale, downgrade, busy, held, a twin waiting) is refused before anyone
        # is asked to approve; the window and checklist blockers above are the ones `--force` may carry.
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
            raise UserError("\n".join(refusal_text(r, facts_of_plan, found, self.config.zone) for r in hard))
        if blockers and cmd.force_reason is None:
            raise UserError(
                "\n".join(blockers) + "\nBreak-glass: add `--force <reason>` (an on-call approver is asked)."
            )
        force = cmd.force_reason is not None and bool(blockers)
        if force and not decision.open:
            checklist = ChecklistResult((window_item(decision), *checklist.items))
        fields: dict[str, Any] = {
            "checklist": checklist.to_dict(),
            "notes": notes,
            "rollback_target": rollback.target_version,
            "rollback_method": rollback.method,
        }
        needs_approval = force or environment.approvals.required > 0
        if needs_approval:
            release = await self._create_release(
                actor,
                plan,
                ReleaseState.AWAITING_APPROVAL,
                take_lock=False,
                audit={
                    "version": plan.version,
                    "env": plan.env,
                    "force_reason": cmd.force_reason if force else None,
                },
                **fields,
                force_reason=cmd.force_reason if force else None,
            )
            release = await self.story.post_parent(release)
            # Break-glass adds an on-call approver (not the requester); it never replaces the approvals the
            # environment asks of every release, so both requests must be granted before it runs.
            if environment.approvals.required > 0:
                await self.approvals.open_approval(
                    kind=ApprovalKind.RELEASE,
                    service=plan.service,
                    env=plan.env,
                    requester=actor,
                    required=environment.approvals.required,
                    groups=list(environment.approvals.from_ or []),
                    subject={"release_id": release.id},
                    title=f"Release of {plan.service} {plan.version} to {plan.env}",
                    detail_lines=[],
                )
            if force:
                await self.approvals.open_approval(
                    kind=ApprovalKind.FORCE,
                    service=plan.service,
                    env=plan.env,
                    requester=actor,
                    required=1,
                    groups=["oncall"],
                    subject={"release_id": release.id},
                    title=f"Break-glass release of {plan.service} {plan.version} to {plan.env}",
                    detail_lines=[f"Reason: {escape(cmd.force_reason or '')}", *blockers],
                )
            return Reply(
                render.info(f"Release #{release.id} of {escape(plan.version)} to {plan.env} is waiting for approval.")
            )
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
            raise UserError(lock_refusal(held.lock, self.config.zone)) from None
        release = await self.story.post_parent(release)
        self.tasks.spawn(self.rollouts.run_release(release), f"release-{release.id}")
        return Reply(render.info(f"Release #{release.id}: {escape(plan.version)} to {plan.env} has started."))

    async def retry(self, actor: Actor, release_id: int) -> Reply:
        """Retry an interrupted release: a new release of the same version, through the same gates."""
        release = await self.db.get_release(release_id)
        if release is None or release.state is not ReleaseState.INTERRUPTED:
            raise UserError("only an interrupted release can be retried.")
        await self.gate.require(Action.RELEASE_RETRY, actor.user, release.env)
        cmd = Command(name="deploy", service=release.service, env=release.env, version=release.version)
        # Refused (busy, window closed…): nothing started, so the button works again later.
        return await self.story.once(
            f"retry:{release_id}",
            "a retry of this release was already started.",
            lambda: self.request_release(actor, cmd),
        )
