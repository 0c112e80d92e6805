"""Running a release: the rollout steps through the provider, the thread story, and the outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.core.imageref import components_with_digests
from bot.core.models import Release, ReleaseKind, ReleaseState
from bot.core.mrkdwn import escape
from bot.core.notes import ReleaseNotes
from bot.core.rollout import Step, abort_steps, plan_rollout, rollback_steps
from bot.core.verdicts import Verdict
from bot.core.window_text import decision_text
from bot.engine.requests import RequestMixin
from bot.manifest_file import ManifestCommitError, commit_manifest
from bot.providers.base import DeployContext, StepResult
from bot.slack import render
from bot.slack.render_notes import notes_blocks

ACTIVE = {ReleaseState.QUEUED, ReleaseState.DEPLOYING, ReleaseState.VERIFYING}


class RunnerMixin(RequestMixin):
    # Implemented by the checks mixin.
    async def verify_step(self, release: Release, step: Step) -> Verdict:
        raise RuntimeError("the checks mixin is missing")

    async def schedule_checks(self, release: Release) -> None:
        raise RuntimeError("the checks mixin is missing")

    async def run_release(self, release_id: int) -> None:
        """Deploy a queued release (it holds the lock) to the end, recording every step."""
        release = await self.db.run(self.db.sync.get_release, release_id)
        if release is None or release.state is not ReleaseState.QUEUED:
            return
        if release.kind is not ReleaseKind.ROLLBACK and release.forced_by is None:
            # Checked again right before the deploy: a release queued at 15:59 must not start at 16:01.
            decision = await self.window(release.service, release.env)
            if not decision.open:
                reason = decision_text(decision, self.config.zone)
                await self._finish(
                    release,
                    ReleaseState.CANCELLED,
                    "release-bot",
                    f"window closed: {reason}",
                    error=f"window closed before the deploy started: {reason}",
                )
                await self.reply(release.id, render.thread_reply(f"🚫 Not started: {escape(reason)}"))
                return
        await self.db.run(
            self.db.sync.transition,
            release.id,
            ReleaseState.DEPLOYING,
            actor="release-bot",
            detail="deploy started",
            now=self.now(),
            only_from={ReleaseState.QUEUED},
        )
        await self.refresh_parent(release.id)
        if release.notes and not release.notes.get("unavailable"):
            notes = ReleaseNotes.from_dict(release.notes)
            url = self._notes_url(release)
            await self._reply_blocks(
                release.id, f"Release notes for {release.version}", notes_blocks(notes, full_notes_url=url)
            )
        if release.kind is ReleaseKind.ROLLBACK:
            await self._run_rollback_steps(release)
        else:
            await self._run_rollout(release)

    def _notes_url(self, release: Release) -> str | None:
        if not self.deps.base_url:
            return None
        return (
            f"{self.deps.base_url.rstrip('/')}/api/v1/notes?service={release.service}"
            f"&from={release.previous_version or ''}&to={release.version}"
        )

    async def _reply_blocks(self, release_id: int, text: str, blocks: list[dict[str, Any]]) -> None:
        await self.reply(release_id, render.Message(text=text, blocks=blocks))

    def _ctx(self, release: Release, step: Step, version: str | None = None) -> DeployContext:
        return DeployContext(
            service=release.service,
            version=version or release.version,
            environment=release.env,
            release_id=release.id,
            weight=step.weight if step.weight is not None else 100,
            colour=step.colour,
            previous_version=release.previous_version,
        )

    async def _act(self, release: Release, step: Step, version: str | None = None) -> StepResult:
        provider = self.deps.providers(release.env)
        ctx = self._ctx(release, step, version)
        if step.kind == "deploy":
            return await provider.deploy(ctx)
        return await provider.shift(ctx)

    async def _run_rollout(self, release: Release) -> None:
        environment = self.config.environments[release.env]
        colour_now = await self.db.run(self.db.sync.env_colour, release.service, release.env)
        steps = plan_rollout(environment.strategy, current_colour=colour_now)
        reached: Step | None = None
        for step in steps:
            if step.kind == "verify":
                await self.db.run(
                    self.db.sync.transition,
                    release.id,
                    ReleaseState.VERIFYING,
                    actor="release-bot",
                    detail=step.label,
                    now=self.now(),
                    only_from=ACTIVE,
                )
                await self.reply(release.id, render.thread_reply(f"🔎 {escape(step.label)}"))
                if step.pause.total_seconds() > 0:
                    await self.deps.sleep(step.pause.total_seconds())
                verdict = await self.verify_step(release, step)
                if verdict is not Verdict.PASS:
                    await self._abort(release, environment, reached or step, f"checks {verdict.value} at {step.label}")
                    return
                continue
            result = await self._act(release, step)
            await self.db.run(
                self.db.sync.update_release,
                release.id,
                output_tail=result.output_tail[-4000:],
                weight=step.weight,
                colour=step.colour,
            )
            if not result.ok:
                summary = f"{step.label} failed: {result.error or 'unknown error'}"
                if reached is not None:
                    await self._abort(release, environment, reached, summary, tail=result.output_tail)
                else:
                    await self._finish(
                        release,
                        ReleaseState.FAILED,
                        "release-bot",
                        summary,
                        error=summary,
                        change_failure=True,
                    )
                    await self.reply(release.id, render.failure_reply(summary, result.output_tail))
                return
            reached = step
            await self.reply(release.id, render.thread_reply(f"✅ {escape(step.label)}"))
            await self.refresh_parent(release.id)
        colour = reached.colour if reached is not None else None
        await self._finish(
            release,
            ReleaseState.SUCCEEDED,
            release.requested_by,
            "released",
            **({"colour": colour} if colour else {}),
        )
        await self.reply(
            release.id,
            render.thread_reply(
                f"🎉 {escape(release.service)} {escape(release.version)} is live in {escape(release.env)}."
            ),
        )
        done = await self.db.run(self.db.sync.get_release, release.id)
        if done is not None:
            await self._after_success(done)

    async def _abort(
        self, release: Release, environment: Any, reached: Step, summary: str, tail: str | None = None
    ) -> None:
        """A step failed mid-rollout: return traffic to the previous release, then record the failure."""
        for step in abort_steps(environment.strategy, None, reached=reached):
            result = await self._act(release, step, version=release.previous_version or release.version)
            await self.reply(
                release.id,
                render.thread_reply(
                    f"↩️ {escape(step.label)}: {'done' if result.ok else escape(result.error or 'failed')}"
                ),
            )
        await self._finish(
            release, ReleaseState.FAILED, "release-bot", summary, error=summary, change_failure=True, weight=0
        )
        await self.reply(release.id, render.failure_reply(summary, tail))

    async def _finish(self, release: Release, state: ReleaseState, actor: str, detail: str, **fields: Any) -> None:
        await self.db.run(
            self.db.sync.transition,
            release.id,
            state,
            actor=actor,
            detail=detail,
            now=self.now(),
            only_from=ACTIVE | {ReleaseState.AWAITING_APPROVAL},
            **fields,
        )
        await self.audit(actor, f"release.{state.value}", f"release:{release.id}", detail=detail)
        await self.refresh_parent(release.id)
        await self.changed(release.service)

    async def _after_success(self, release: Release) -> None:
        # A newer release supersedes the checks still pending for older ones in the same place.
        for older in await self.db.run(self.db.sync.history, release.service, release.env, 20):
            if older.id != release.id:
                await self.db.run(self.db.sync.cancel_measurements, older.id)
        await self.schedule_checks(release)
        if self.config.manifest is not None and release.env == self.config.services[release.service].pipeline[-1]:
            await self._commit_manifest(release)

    def manifest_document(
        self, release: Release, commit: str, components: dict[str, str], at: datetime | None
    ) -> dict[str, Any]:
        return {
            "service": release.service,
            "env": release.env,
            "version": release.version,
            "commit": commit,
            "released_at": (at or self.now()).isoformat(),
            "released_by": release.requested_by,
            "release_id": release.id,
            "components": components_with_digests(components),
        }

    async def _commit_manifest(self, release: Release) -> None:
        assert self.config.manifest is not None
        candidate = await self.db.run(self.db.sync.get_candidate, release.service, release.version)
        if candidate is None:
            return
        document = self.manifest_document(release, candidate.commit, candidate.components, release.finished_at)
        relative = self.config.manifest.file.replace("{service}", release.service)
        message = f"release {release.service} {release.version} to {release.env} (#{release.id})"
        try:
            sha = await commit_manifest(self.config.manifest.repo, relative, document, message)
        except (ManifestCommitError, ValueError) as exc:
            await self.reply(
                release.id,
                render.thread_reply(f"⚠️ Could not commit the release manifest: {escape(str(exc))}"),
            )
            return
        if sha:
            await self.reply(release.id, render.thread_reply(f"📄 Release manifest committed as `{sha[:12]}`."))

    async def _run_rollback_steps(self, release: Release) -> None:
        """Run a rollback release: the provider's rollback (or switch back), then mark the original."""
        environment = self.config.environments[release.env]
        colour_now = await self.db.run(self.db.sync.env_colour, release.service, release.env)
        steps = rollback_steps(environment.strategy, colour_now)
        provider = self.deps.providers(release.env)
        result: StepResult | None = None
        for step in steps:
            ctx = self._ctx(release, step)
            result = await (provider.shift(ctx) if step.kind in {"shift", "switch"} else provider.rollback(ctx))
            await self.reply(release.id, render.thread_reply(f"{'✅' if result.ok else '❌'} {escape(step.label)}"))
            if not result.ok:
                break
        if result is None or not result.ok:
            error = result.error if result else "no rollback step"
            await self._finish(
                release,
                ReleaseState.FAILED,
                "release-bot",
                f"rollback failed: {error}",
                error=f"rollback failed: {error}",
                output_tail=result.output_tail if result else None,
            )
            await self.reply(
                release.id,
                render.failure_reply(f"Rollback failed: {error}", result.output_tail if result else None),
            )
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
        if release.rollback_of is not None:
            original = await self.db.run(self.db.sync.get_release, release.rollback_of)
            if original is not None:
                await self.db.run(self.db.sync.cancel_measurements, original.id)
                await self.db.run(
                    self.db.sync.transition,
                    original.id,
                    ReleaseState.ROLLED_BACK,
                    actor=release.requested_by,
                    detail=f"rolled back by release #{release.id}",
                    now=self.now(),
                    only_from={
                        ReleaseState.SUCCEEDED,
                        ReleaseState.FAILED,
                        ReleaseState.INTERRUPTED,
                        ReleaseState.VERIFYING,
                    },
                    change_failure=True,
                    healthy=False,
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
