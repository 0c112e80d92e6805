"""The buttons under a check result and under a rollout on hold: roll back, looks good, dismiss."""

from __future__ import annotations

from bot.core.models import Release, ReleaseState
from bot.engine import claims
from bot.engine.base import Actor, Reply
from bot.engine.errors import UserError
from bot.engine.gatekeeper import Context, Gatekeeper
from bot.engine.rollbacks import Rollbacks
from bot.engine.runner import Rollouts
from bot.engine.story import Story, Tasks
from bot.policy.permissions import Action
from bot.views import checks as check_views
from bot.views import rollbacks as rollback_views


class CheckActions:
    def __init__(
        self, *, story: Story, tasks: Tasks, gate: Gatekeeper, rollbacks: Rollbacks, rollouts: Rollouts
    ) -> None:
        self.db = story.db
        self.story = story
        self.tasks = tasks
        self.gate = gate
        self.rollbacks = rollbacks
        self.rollouts = rollouts

    async def check_action(self, actor: Actor, release_id: int, action: str) -> Reply:
        """Buttons under a check result: roll back, dismiss, or looks good (also for a held rollout)."""
        release = await self.db.get_release(release_id)
        if release is None:
            raise UserError(rollback_views.release_gone())
        await self.gate.require(Action(action), actor.user, release.env, Context(system=actor.system))
        if release.state is ReleaseState.VERIFYING:
            return await self._held_action(actor, release, action)
        if release.state is not ReleaseState.SUCCEEDED:
            raise UserError(check_views.release_moved_on(release.state.value))
        current = await self.db.env_state(release.service, release.env)
        if current is not None and current.release_id != release.id:
            # A newer release replaced this one: its checks were cancelled, and its buttons would act on
            # (or vouch for) what no longer runs. Say what runs now and how to act on it.
            raise UserError(rollback_views.replaced(release.id, release.version, release.env, current.version))
        if action == "check_rollback":
            return await self.story.once(
                claims.check_rollback(release_id),
                rollback_views.already_requested(),
                lambda: self.rollbacks.request_rollback(
                    actor, release.service, release.env, None, of_release=release_id, action=Action.CHECK_ROLLBACK
                ),
            )
        if not await self.db.claim(f"check-ack:{release_id}:{action}", self.story.now()):
            raise UserError(check_views.already_noted())
        healthy = action == "check_looks_good"
        await self.db.update_release(release_id, **({"healthy": True} if healthy else {}))
        await self.story.audit(actor, "check.acknowledged", f"release:{release_id}", button=action)
        await self.story.reply(release_id, check_views.acknowledged(actor.user, looks_good=healthy))
        return Reply(check_views.noted_reply(looks_good=healthy))

    async def _held_action(self, actor: Actor, release: Release, action: str) -> Reply:
        held_at = release.held_step
        if held_at is None:
            raise UserError(check_views.still_checking())
        if action not in {"check_looks_good", "check_rollback"}:
            raise UserError(check_views.hold_choices())
        # One decision per hold, whoever clicks first and however often: the key names the held step.
        key = f"hold:{release.id}:{release.weight}:{release.colour}"
        if not await self.db.claim(key, self.story.now()):
            raise UserError(check_views.already_decided())
        if action == "check_looks_good":
            await self.story.audit(actor, "rollout.continued", f"release:{release.id}", step=held_at)
            await self.story.reply(release.id, check_views.continuing(actor.user, held_at))
            self.tasks.spawn(self.rollouts.resume_rollout(release.id), f"resume-{release.id}")
            return Reply(check_views.continuing_reply(release.version))
        await self.story.audit(actor, "rollout.rolled_back", f"release:{release.id}", step=held_at)
        await self.story.reply(release.id, check_views.hold_rolled_back(actor.user, held_at))
        why = f"rolled back by {actor.user} after inconclusive checks at {held_at}"  # plain: escaped when shown
        self.tasks.spawn(self.rollouts.abort_held(release.id, why), f"abort-{release.id}")
        return Reply(check_views.rolling_back_reply(release.version))
