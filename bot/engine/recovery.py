"""Start-up after a crash or a restart, and the buttons under a release it interrupted."""

from __future__ import annotations

from bot.config import Config
from bot.core.models import ReleaseState
from bot.engine import claims
from bot.engine.approvals import Approvals
from bot.engine.base import SYSTEM, Actor, Reply
from bot.engine.checks import Checks
from bot.engine.errors import UserError
from bot.engine.outcomes import Outcomes
from bot.engine.requests import Releases
from bot.engine.rollbacks import Rollbacks
from bot.engine.runner import Rollouts
from bot.engine.schedules import Schedules
from bot.engine.story import Story
from bot.observability import release_finished
from bot.policy.permissions import Action
from bot.views import render
from bot.views import rollbacks as rollback_views


class Recovery:
    def __init__(
        self,
        *,
        config: Config,
        story: Story,
        releases: Releases,
        rollouts: Rollouts,
        rollbacks: Rollbacks,
        approvals: Approvals,
        checks: Checks,
        outcomes: Outcomes,
        schedules: Schedules,
    ) -> None:
        self.config = config
        self.db = story.db
        self.story = story
        self.releases = releases
        self.rollouts = rollouts
        self.rollbacks = rollbacks
        self.approvals = approvals
        self.checks = checks
        self.outcomes = outcomes
        self.schedules = schedules

    async def start(self) -> None:
        """Record what the deploy steps left running prove (adopting the ones that still run), interrupt the other
        releases that were running, expire approvals, carry out granted ones, resume checks, then take the
        scheduled releases that came due meanwhile (or mark them missed) and arm the rest."""
        await self.outcomes.recover()
        interrupted = await self.db.interrupt_running(self.story.now())
        for release in interrupted:
            release_finished(release.env, ReleaseState.INTERRUPTED.value)
            await self.story.audit(SYSTEM, "release.interrupted", f"release:{release.id}")
            found = await self.db.get_release(release.id)
            if found is None:
                continue
            if found.thread_ts is None:
                # Killed before its parent message went out: post it now, so the story has somewhere to live.
                await self.story.post_parent(found)
            else:
                await self.story.refresh_parent(release.id)
            await self.story.reply(release.id, render.interrupted_reply(found))
        await self.approvals.expire_due()  # requests that lapsed while the bot was down
        await self.approvals.rearm_expiries()
        await self.approvals.resume_approved()  # granted just before a crash, never carried out
        await self.finish_interrupted_successes()
        await self.db.requeue_running_measurements()
        await self.checks.run_due_measurements()
        self.checks.arm_schedule()
        await self.schedules.recover()

    async def interrupted_action(self, actor: Actor, release_id: int, action: str) -> Reply:
        """Retry / Roll back under an interrupted release's message."""
        release = await self.db.get_release(release_id)
        if release is None:
            raise UserError(rollback_views.release_gone())
        if action == "release_retry":
            return await self.releases.retry(actor, release_id)
        if release.state is not ReleaseState.INTERRUPTED:
            raise UserError(rollback_views.not_interrupted(release.state.value))
        return await self.story.once(
            claims.interrupted_rollback(release_id),
            rollback_views.already_requested(),
            lambda: self.rollbacks.request_rollback(
                actor, release.service, release.env, None, of_release=release_id, action=Action.RELEASE_ROLLBACK
            ),
        )

    async def finish_interrupted_successes(self) -> None:
        """On start: finish the after-success steps of a release that succeeded just before a crash.

        Only releases not marked "after-success steps done" are looked at. Checks are scheduled when the
        release is still within its checks' horizon; past it, only the manifest commit is left (a no-op
        when already committed). Either way the mark is then written, so this runs once.
        """
        for release in await self.db.succeeded_without_after_steps():
            assert release.finished_at is not None
            checks = self.config.checks_for(release.service, release.env)
            horizon = max((offset for check in checks for offset in check.after), default=None)
            if horizon is not None and self.story.now() - release.finished_at <= horizon:
                await self.rollouts.after_success(release)
                continue
            await self.rollouts.commit_manifest_if_production(release)
            await self.db.mark_after_success(release.id, self.story.now())
