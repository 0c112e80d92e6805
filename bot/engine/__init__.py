"""The release engine: request → gate → lock → deploy steps → verify → outcome, talking only to ports."""

from __future__ import annotations

from bot.core.models import ReleaseState
from bot.engine.base import Actor, Deps, Reply, Scheduler, UserError
from bot.engine.summaries import SummaryMixin
from bot.slack import render

__all__ = ["Actor", "Deps", "Engine", "Reply", "Scheduler", "UserError"]


class Engine(SummaryMixin):
    """The whole engine. Construct with :class:`Deps`, then ``await start()``."""

    async def start(self) -> None:
        """Crash recovery: interrupt releases that were running, expire approvals, resume checks."""
        now = self.now()
        interrupted = await self.db.run(self.db.sync.interrupt_running, now)
        for release in interrupted:
            await self.audit("release-bot", "release.interrupted", f"release:{release.id}")
            await self.refresh_parent(release.id)
            found = await self.db.run(self.db.sync.get_release, release.id)
            if found is not None:
                await self.reply(release.id, render.interrupted_reply(found))
        await self.expire_due()  # requests that lapsed while the bot was down
        await self.rearm_expiries()
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
        if not await self.db.run(self.db.sync.claim, f"interrupted-rollback:{release_id}", self.now()):
            raise UserError("a rollback of this release was already requested.")
        return await self.request_rollback(actor, release.service, release.env, None, of_release=release_id)
