"""The release engine: request → gate → lock → deploy steps → verify → outcome, talking only to ports."""

from __future__ import annotations

from bot.core.models import ReleaseState
from bot.engine.base import Actor, Deps, Reply, Scheduler, system_actor
from bot.engine.errors import NotPermitted, UserError
from bot.engine.runner import AFTER_SUCCESS
from bot.engine.summaries import SummaryMixin
from bot.observability import release_finished
from bot.policy.permissions import Action
from bot.slack import render

__all__ = ["Actor", "Deps", "Engine", "NotPermitted", "Reply", "Scheduler", "UserError", "system_actor"]


class Engine(SummaryMixin):
    """The whole engine. Construct with :class:`Deps`, then ``await start()``."""

    async def start(self) -> None:
        """Crash recovery: interrupt releases that were running, expire approvals, resume checks."""
        now = self.now()
        interrupted = await self.db.run(self.db.sync.interrupt_running, now)
        for release in interrupted:
            release_finished(release.env, ReleaseState.INTERRUPTED.value)
            await self.audit("release-bot", "release.interrupted", f"release:{release.id}")
            found = await self.db.run(self.db.sync.get_release, release.id)
            if found is None:
                continue
            if found.thread_ts is None:
                # Killed before its parent message went out: post it now, so the story has somewhere to live.
                await self.post_parent(found)
            else:
                await self.refresh_parent(release.id)
            await self.reply(release.id, render.interrupted_reply(found))
        await self.expire_due()  # requests that lapsed while the bot was down
        await self.rearm_expiries()
        await self.resume_approved()  # granted just before a crash, never carried out
        await self.finish_interrupted_successes()
        await self.db.run(self.db.sync.requeue_running_measurements)
        await self.run_due_measurements()
        self.arm_schedule()

    async def interrupted_action(self, actor: Actor, release_id: int, action: str) -> Reply:
        """Retry / Roll back under an interrupted release's message."""
        release = await self.db.run(self.db.sync.get_release, release_id)
        if release is None:
            raise UserError("that release no longer exists.")
        if action == "release_retry":
            return await self.retry(actor, release_id)
        if release.state is not ReleaseState.INTERRUPTED:
            raise UserError(f"that release is {release.state.value}; nothing to do.")
        return await self.once(
            f"interrupted-rollback:{release_id}",
            "a rollback of this release was already requested.",
            lambda: self.request_rollback(
                actor, release.service, release.env, None, of_release=release_id, action=Action.RELEASE_ROLLBACK
            ),
        )

    async def finish_interrupted_successes(self) -> None:
        """On start: finish the after-success steps of a release that succeeded just before a crash.

        Only releases whose history lacks the "steps done" mark are looked at. Checks are scheduled
        when the release is still within its checks' horizon; past it, only the manifest commit is left
        (a no-op when already committed). Either way the mark is then written, so this runs once.
        """
        for release in await self.db.run(self.db.sync.live_releases_without, AFTER_SUCCESS):
            assert release.finished_at is not None
            checks = self.config.environments[release.env].checks
            horizon = max((offset for check in checks for offset in check.after), default=None)
            if horizon is not None and self.now() - release.finished_at <= horizon:
                await self._after_success(release)
                continue
            await self._commit_manifest_if_production(release)
            await self.db.run(self.db.sync.record_event, release.id, AFTER_SUCCESS, actor="release-bot", now=self.now())
