"""The buttons under a check result and under a rollout on hold: roll back, looks good, dismiss."""

from __future__ import annotations

from bot.core.models import Release, ReleaseState
from bot.engine import claims
from bot.engine.base import Actor, Reply
from bot.engine.errors import UserError
from bot.engine.gatekeeper import Context, Gatekeeper
from bot.engine.rollbacks import Rollbacks
from bot.engine.runner import ACTIVE, Rollouts
from bot.engine.story import Story, Tasks
from bot.policy.permissions import Action
from bot.views import alerts as alert_views
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

    async def check_action(self, actor: Actor, release_id: int, action: str, *, why: str | None = None) -> Reply:
        """Buttons under a check result: roll back, dismiss, or looks good (also for a held rollout). Roll back
        under a release still rolling out (an alert fired during it) stops the rollout; ``why`` says why."""
        release = await self.db.get_release(release_id)
        if release is None:
            raise UserError(rollback_views.release_gone())
        await self.gate.require(Action(action), actor.user, release.env, Context(system=actor.system))
        if action == "check_rollback" and release.state in ACTIVE and release.held_step is None:
            return await self._stop_rollout(actor, release, why or f"rollout stopped by {actor.user}")
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

    async def _stop_rollout(self, actor: Actor, release: Release, why: str) -> Reply:
        """Roll back a release that is still rolling out: its rollout stops at the next step boundary and returns
        traffic exactly as a failed verify step does (Rollouts.request_stop); once per release, like the rollback
        of a live one (the same claim)."""
        key = claims.check_rollback(release.id)
        if not await self.db.claim(key, self.story.now()):
            raise UserError(rollback_views.already_requested())
        if not self.rollouts.request_stop(release.id, why):  # held, or just finishing: nothing of it to stop now
            await self.db.unclaim(key)
            raise UserError(alert_views.rollout_not_stoppable(release.version))
        await self.story.audit(actor, "rollout.stop_requested", f"release:{release.id}", reason=why)
        await self.story.reply(release.id, alert_views.rollout_stopping(actor.user, release.previous_version))
        return Reply(alert_views.rollout_stopping_reply(release.version))

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
