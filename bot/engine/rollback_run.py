"""Running a rollback release: the provider's rollback, a canary shift back or a blue/green switch back."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.core.models import Release, ReleaseState
from bot.core.mrkdwn import escape
from bot.core.rollout import Step, idle_colour, rollback_steps
from bot.engine.runner import RunnerMixin
from bot.providers.base import StepResult
from bot.slack import render


class RollbackRunMixin(RunnerMixin):
    async def _run_rollback_steps(self, release: Release) -> None:
        """Run a rollback release: the provider's rollback (or switch back), then mark the original."""
        environment = self.config.environments[release.env]
        live_colour = await self.db.run(self.db.sync.env_colour, release.service, release.env)
        # rollback_steps wants the colour that served before the release being undone: the idle one now.
        before = idle_colour(live_colour) if live_colour is not None else None
        steps = rollback_steps(environment.strategy, before)
        provider = self.deps.providers(release.env)
        original = await self.db.run(self.db.sync.get_release, release.rollback_of) if release.rollback_of else None
        if any(step.kind == "shift" for step in steps) and (
            original is None or original.previous_version != release.version
        ):
            # Setting the undone version's canary weight to 0 returns traffic to whatever ran before it; when the
            # target is an older release than that, only a full redeploy of the target gets there.
            steps = [Step("deploy", 100, None, timedelta(0), f"redeploy {release.version} to 100% of traffic")]
        result: StepResult | None = None
        for step in steps:
            ctx = self._ctx(release, step)
            if step.kind == "shift" and release.rollback_target:
                # A canary shift sets the share of the version being rolled back (to 0); traffic returns
                # to the rollback target, given to the provider as the previous version.
                ctx = replace(ctx, version=release.rollback_target, previous_version=release.version)
            action = step.kind if step.kind in {"shift", "switch"} else "rollback"
            with self._deploy_timer(release.env, action):
                result = await (provider.shift(ctx) if action != "rollback" else provider.rollback(ctx))
            await self.reply(release.id, render.thread_reply(f"{'✅' if result.ok else '❌'} {escape(step.label)}"))
            if not result.ok:
                break
        if result is None or not result.ok:
            error = result.error if result else "no rollback step"
            tail = result.output_tail if result else None
            await self._fail(release, f"rollback failed: {error}", tail, change_failure=False, output_tail=tail)
            return
        colour = steps[-1].colour if steps else None
        await self._finish(
            release,
            ReleaseState.SUCCEEDED,
            release.requested_by,
            "rolled back",
            output_tail=result.output_tail[-4000:],
            **({"colour": colour} if colour else {}),
        )
        if original is not None:
            await self.cancel_checks(original.id, f"rolled back by release #{release.id}")
            await self.move(
                original.id,
                original.env,
                ReleaseState.ROLLED_BACK,
                actor=release.requested_by,
                detail=f"rolled back by release #{release.id}",
                only_from={
                    ReleaseState.SUCCEEDED,
                    ReleaseState.FAILED,
                    ReleaseState.INTERRUPTED,
                    ReleaseState.VERIFYING,
                },
                change_failure=True,
                healthy=False,
                # Keep when it was released: its lead time and the period it counts in stay true.
                finished_at=original.finished_at or self.now(),
            )
            await self.audit(
                release.requested_by, "release.rolled_back", f"release:{original.id}", by_release=release.id
            )
            await self.refresh_parent(original.id)
            await self.reply(
                original.id,
                render.thread_reply(
                    f"↩️ Rolled back to {escape(release.version)} by {render.user(release.requested_by)} "
                    f"(release #{release.id})."
                ),
            )
        await self.reply(
            release.id, render.thread_reply(f"↩️ {escape(release.env)} is back on {escape(release.version)}.")
        )
