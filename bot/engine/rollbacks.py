"""Rollbacks: `/release rollback`, the buttons that ask for one, and the bot's own after a failed check."""

from __future__ import annotations

from typing import Any

from bot.config import Config
from bot.core.models import ApprovalKind, ReleaseKind, ReleaseState
from bot.engine.admitting import facts, read, refusal_words
from bot.engine.approvals import Approvals
from bot.engine.base import Actor, Reply
from bot.engine.errors import UserError
from bot.engine.gatekeeper import Context, Gatekeeper
from bot.engine.runner import Rollouts
from bot.engine.story import Story, Tasks
from bot.policy.admission import Kind, PlanFacts, Stage, admit
from bot.policy.permissions import Action
from bot.store import LockHeld
from bot.views import rollbacks as rollback_views
from bot.views import thread

ROLLBACKABLE = {ReleaseState.SUCCEEDED, ReleaseState.FAILED, ReleaseState.INTERRUPTED, ReleaseState.VERIFYING}
NEVER_RAN = {ReleaseState.CANCELLED, ReleaseState.AWAITING_APPROVAL}


class Rollbacks:
    def __init__(
        self,
        *,
        config: Config,
        story: Story,
        tasks: Tasks,
        gate: Gatekeeper,
        approvals: Approvals,
        rollouts: Rollouts,
    ) -> None:
        self.config = config
        self.db = story.db
        self.story = story
        self.tasks = tasks
        self.gate = gate
        self.approvals = approvals
        self.rollouts = rollouts

    async def request_rollback(
        self,
        actor: Actor,
        service: str,
        env: str,
        target: str | None,
        of_release: int | None = None,
        *,
        action: Action = Action.ROLLBACK,
    ) -> Reply:
        """`/release rollback <env> [to <version>]`: never blocked by windows; on-call approval per config."""
        await self.gate.require(action, actor.user, env, Context(system=actor.system))
        await self.approvals.expire_due()  # a rollback whose request lapsed must not block this one
        current = await self.db.env_state(service, env)
        recent = await self.db.history(service, env, 20)
        waiting = next(
            (r for r in recent if r.kind is ReleaseKind.ROLLBACK and r.state is ReleaseState.AWAITING_APPROVAL), None
        )
        if waiting is not None:
            raise UserError(rollback_views.waiting_rollback(service, env, waiting.version, waiting.id))
        # The release to undo is the latest one that actually ran (a cancelled request changed nothing).
        latest = next((r for r in recent if r.state not in NEVER_RAN), None)
        original = None
        if of_release is not None:
            original = await self.db.get_release(of_release)
        elif latest is not None and latest.state in ROLLBACKABLE:
            original = latest
        if original is None and current is None:
            raise UserError(rollback_views.nothing_released(env))
        from_version = original.version if original else (current.version if current else "")
        if target is None:
            healthy = await self.db.last_healthy(
                service,
                env,
                before_id=original.id if original else None,
                not_version=from_version,
            )
            if healthy is None:
                raise UserError(rollback_views.no_healthy_target(env))
            target = healthy.version
        elif not await self.db.succeeded_in(service, env, target):
            raise UserError(rollback_views.never_ran(target, env))
        if target == (current.version if current else None) and original is None:
            raise UserError(rollback_views.already_runs(env, target))
        if (
            of_release is not None
            and original is not None
            and original.state is ReleaseState.SUCCEEDED
            and current is not None
            and current.version != original.version
        ):
            # A button under a release that a newer one replaced: rolling "it" back would move whatever runs now.
            raise UserError(rollback_views.replaced(original.id, original.version, env, current.version))
        rollback_plan = PlanFacts(
            service=service,
            env=env,
            version=target,
            kind=Kind.ROLLBACK,
            replaces=current.version if current else None,
            requester=actor.user,
            undoes_release=original is not None,
        )
        chosen = target
        reads = await self.db.unit(lambda store: read(store, service, env, chosen, previous=None, ask_duplicates=True))
        # A rollback returns to what ran there, candidate record or not, and never waits for a window.
        found = facts(reads, forward=False, window=None, checklist=None)
        refused = admit(rollback_plan, found.world, Stage.REQUEST).refusals
        if refused:
            reasons = [refusal_words(r, rollback_plan, found, self.config.zone) for r in refused]
            raise UserError(rollback_views.not_admitted(reasons))
        policy = self.config.environments[env].rollback.approvals
        approvers = self.gate.who(env).rollback_approvers
        # Rolling back is the safe direction: asked by one of its approvers, the request is its own first
        # approval, so one on-call engineer can roll back at once; anyone else's waits for ``required``.
        own = policy.required > 0 and not actor.system and await self.gate.in_groups(actor.user, approvers)
        needed = policy.required - (1 if own else 0)
        # Undoing a rollback means deploying again what it replaced.
        fields: dict[str, Any] = {"rollback_target": from_version, "rollback_method": f"redeploying {from_version}"}
        state = ReleaseState.AWAITING_APPROVAL if needed > 0 else ReleaseState.QUEUED
        try:
            release = await self.db.create_release(
                service=service,
                env=env,
                version=target,
                kind=ReleaseKind.ROLLBACK,
                state=state,
                requested_by=actor.user,
                now=self.story.now(),
                take_lock=state is ReleaseState.QUEUED,
                rollback_of=original.id if original else None,
                **fields,
            )
        except LockHeld as held:
            raise UserError(rollback_views.busy(service, env, held.lock.holder, held.lock.reason)) from None
        await self.story.audit(
            actor,
            "rollback.requested",
            f"release:{release.id}",
            target=target,
            of_release=original.id if original else None,
            counted_as_approval=own,
        )
        await self.story.post_parent(release)
        if original is not None:
            await self.story.reply(original.id, thread.rollback_asked(actor.user, target, release.id))
        if state is ReleaseState.AWAITING_APPROVAL:
            await self.approvals.open_approval(
                kind=ApprovalKind.ROLLBACK,
                service=service,
                env=env,
                requester=actor,
                required=needed,
                groups=list(approvers),
                subject={"release_id": release.id},
                title=f"Roll back {service} {env} from {from_version} to {target}",
                detail_lines=[],
            )
            return Reply(rollback_views.waiting_for_approval(target))
        self.tasks.spawn(self.rollouts.run_release(release), f"release-{release.id}")
        return Reply(rollback_views.rolling_back(env, target, release.id))
