"""The buttons under a check result and under a rollout on hold: roll back, looks good, dismiss."""

from __future__ import annotations

from bot.core.models import Release, ReleaseState
from bot.engine.base import Actor, Reply
from bot.engine.errors import UserError
from bot.engine.gatekeeper import Context, Gatekeeper
from bot.engine.rollbacks import Rollbacks
from bot.engine.runner import Rollouts
from bot.engine.story import Story, Tasks
from bot.policy.permissions import Action
from bot.views import render
from bot.views.mrkdwn import escape


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
            raise UserError("that release no longer exists.")
        await self.gate.require(Action(action), actor.user, release.env, Context(system=actor.system))
        if release.state is ReleaseState.VERIFYING:
            return await self._held_action(actor, release, action)
        if release.state is not ReleaseState.SUCCEEDED:
            raise UserError(f"that release is {release.state.value} now; nothing to do.")
        if action == "check_rollback":
            return await self.story.once(
                f"check-rollback:{release_id}",
                "a rollback of this release was already requested.",
                lambda: self.rollbacks.request_rollback(
                    actor, release.service, release.env, None, of_release=release_id, action=Action.CHECK_ROLLBACK
                ),
            )
        if not await self.db.claim(f"check-ack:{release_id}:{action}", self.story.now()):
            raise UserError("already noted.")
        healthy = action == "check_looks_good"
        await self.db.update_release(release_id, **({"healthy": True} if healthy else {}))
        await self.story.audit(actor, "check.acknowledged", f"release:{release_id}", button=action)
        what = "looks good" if healthy else "dismissed"
        await self.story.reply(release_id, render.thread_reply(f"👍 {render.user(actor.user)}: {what}."))
        return Reply(render.info(f"Noted: {what}."))

    async def _held_action(self, actor: Actor, release: Release, action: str) -> Reply:
        held_at = release.held_step
        if held_at is None:
            raise UserError("this rollout is still running its checks; wait for their result.")
        if action not in {"check_looks_good", "check_rollback"}:
            raise UserError("a rollout on hold can only continue (Looks good) or roll back.")
        # One decision per hold, whoever clicks first and however often: the key names the held step.
        key = f"hold:{release.id}:{release.weight}:{release.colour}"
        if not await self.db.claim(key, self.story.now()):
            raise UserError("someone already decided on this hold; nothing more was done.")
        if action == "check_looks_good":
            await self.story.audit(actor, "rollout.continued", f"release:{release.id}", step=held_at)
            await self.story.reply(
                release.id,
                render.thread_reply(f"👍 {render.user(actor.user)}: looks good — continuing after {escape(held_at)}."),
            )
            self.tasks.spawn(self.rollouts.resume_rollout(release.id), f"resume-{release.id}")
            return Reply(render.info(f"Continuing the rollout of {escape(release.version)}."))
        await self.story.audit(actor, "rollout.rolled_back", f"release:{release.id}", step=held_at)
        await self.story.reply(
            release.id, render.thread_reply(f"↩️ {render.user(actor.user)} chose to roll back at {escape(held_at)}.")
        )
        why = f"rolled back by {actor.user} after inconclusive checks at {held_at}"  # plain: escaped when shown
        self.tasks.spawn(self.rollouts.abort_held(release.id, why), f"abort-{release.id}")
        return Reply(render.info(f"Rolling back the rollout of {escape(release.version)}."))
