"""Running a release: the rollout steps through the provider, the thread story, and the outcome."""

from __future__ import annotations

from typing import Any

from bot.core.manifest import manifest_document
from bot.core.models import Release, ReleaseKind, ReleaseState
from bot.core.mrkdwn import escape
from bot.core.notes import ReleaseNotes
from bot.core.rollout import Step, abort_steps, plan_rollout
from bot.core.verdicts import Measurement, Verdict, worst
from bot.core.window_text import decision_text
from bot.engine.admitting import gather, plan_facts, refusal_text
from bot.engine.base import SYSTEM_USER
from bot.engine.requests import RequestMixin, window_mrkdwn
from bot.manifest_file import ManifestCommitError, commit_manifest
from bot.notes_link import notes_link
from bot.observability import Timer, deploy_timer
from bot.policy.admission import Code, Kind, Stage, admit
from bot.providers.base import DeployContext, StepResult
from bot.slack import render
from bot.slack.render_notes import notes_blocks

ACTIVE = {ReleaseState.QUEUED, ReleaseState.DEPLOYING, ReleaseState.VERIFYING}
AFTER_SUCCESS = "post-release steps done"  # the release_events detail written when _after_success ends


class RunnerMixin(RequestMixin):
    # Implemented by the checks mixin.
    async def verify_step(self, release: Release, step: Step) -> list[Measurement]:
        raise RuntimeError("the checks mixin is missing")

    async def schedule_checks(self, release: Release) -> None:
        raise RuntimeError("the checks mixin is missing")

    async def hold_rollout(self, release: Release, step: Step, reasons: str) -> None:
        raise RuntimeError("the checks mixin is missing")

    async def cancel_checks(self, release_id: int, why: str) -> int:
        raise RuntimeError("the checks mixin is missing")

    async def cancel_superseded_checks(self, release: Release) -> None:
        raise RuntimeError("the checks mixin is missing")

    async def _run_rollback_steps(self, release: Release) -> None:
        raise RuntimeError("the rollback mixin is missing")

    async def run_release(self, release_id: int) -> None:
        """Deploy a queued release (it holds the lock) to the end, recording every step."""
        release = await self.db.run(self.db.sync.get_release, release_id)
        if release is None or release.state is not ReleaseState.QUEUED:
            return
        if not await self._admitted(release):
            return
        started = await self.db.run(
            self.db.sync.transition,
            release.id,
            ReleaseState.DEPLOYING,
            actor="release-bot",
            detail="deploy started",
            now=self.now(),
            only_from={ReleaseState.QUEUED},
        )
        if not started:  # another run of this release won the race: never deploy twice
            return
        await self.audit("release-bot", "release.deploying", f"release:{release.id}", version=release.version)
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

    async def _admitted(self, release: Release) -> bool:
        """Admission again, right before the deploy: the plan may have gone stale while it waited for an
        approval or a queue (a newer release ran, a rollback happened, the window closed at 16:00, a test
        failed). Only a break-glass approval that overrode the window itself lets a closed window through;
        one that overrode checklist items alone is held to the window like any release. A refusal cancels
        the release (and frees its lock) before anything is deployed, and says why in its thread.
        """
        plan = plan_facts(release)
        forward = plan.kind is Kind.FORWARD  # a rollback never waits for a window or a checklist
        current = await self.db.run(self.db.sync.env_state, release.service, release.env)
        candidate = await self.db.run(self.db.sync.get_candidate, release.service, release.version) if forward else None
        decision = await self.window(release.service, release.env) if forward else None
        facts = await gather(
            self.db,
            release.service,
            release.env,
            release.version,
            current=current,
            candidate=candidate,
            window=decision,
            checklist=await self._checklist_now(release, candidate) if candidate is not None else None,
            ask_duplicates=False,
        )
        admission = admit(plan, facts.world, Stage.START)
        refused = [r for r in admission.refusals if r.code is not Code.WINDOW]
        if refused:
            text = "\n".join(refusal_text(r, plan, facts, self.config.zone) for r in refused)
            plain = "; ".join(r.code.value for r in refused)
            await self._finish(
                release, ReleaseState.CANCELLED, SYSTEM_USER, f"not admitted: {plain}", error=f"not admitted: {plain}"
            )
            await self.reply(release.id, render.thread_reply(f"🚫 Not started: {text}"))
            return False
        if decision is not None and admission.has(Code.WINDOW):
            reason = decision_text(decision, self.config.zone)  # stored as plain text, escaped when shown
            await self._finish(
                release,
                ReleaseState.CANCELLED,
                SYSTEM_USER,
                f"window closed: {reason}",
                error=f"window closed before the deploy started: {reason}",
            )
            shown = window_mrkdwn(decision, self.config.zone)
            await self.reply(release.id, render.thread_reply(f"🚫 Not started: {shown}"))
            return False
        if release.forced_by is not None:
            await self.audit(
                release.forced_by,
                "release.break_glass",
                f"release:{release.id}",
                reason=release.force_reason,
                requested_by=release.requested_by,
                overridden=[str(i["item"]) for i in release.checklist if i.get("overridden_by")],
            )
        return True

    def _notes_url(self, release: Release) -> str | None:
        """A signed link to the full notes page: Slack users have no API token to open /api/v1/notes."""
        if not self.deps.base_url or not self.deps.notes_link_key:
            return None
        return notes_link(
            self.deps.base_url,
            self.deps.notes_link_key,
            service=release.service,
            previous=release.previous_version,
            version=release.version,
            now=self.now(),
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
        with self._deploy_timer(release.env, step.kind):
            if step.kind == "deploy":
                return await provider.deploy(ctx)
            return await provider.shift(ctx)

    def _deploy_timer(self, env: str, action: str) -> Timer:
        """Times one provider call into ``releasebot_deploy_seconds``."""
        return deploy_timer(env, self.config.environments[env].deploy.provider, action)

    async def _plan(self, release: Release) -> tuple[str | None, list[Step]]:
        """The colour serving before this release and the release's rollout steps.

        env_state only changes when a release succeeds, so the plan computed when resuming a held
        rollout is the plan it started with.
        """
        strategy = self.config.environments[release.env].strategy
        colour_now = await self.db.run(self.db.sync.env_colour, release.service, release.env)
        return colour_now, plan_rollout(strategy, current_colour=colour_now)

    async def _run_rollout(self, release: Release, start: int = 0) -> None:
        """Run the plan's steps from ``start``: deploy / shift / switch through the provider, verify between.

        After a verify step: FAIL aborts (traffic back to the previous release); INCONCLUSIVE holds the
        rollout at its current weight until on-call decides (never an automatic rollback).
        """
        colour_now, steps = await self._plan(release)
        reached = next((s for s in reversed(steps[:start]) if s.kind != "verify"), None)
        for index in range(start, len(steps)):
            step = steps[index]
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
                measured = await self.verify_step(release, step)
                verdict = worst(m.verdict for m in measured) or Verdict.PASS
                if verdict is Verdict.PASS:
                    continue
                reasons = "; ".join(m.summary for m in measured if m.verdict is not Verdict.PASS)
                if verdict is Verdict.FAIL:
                    summary = f"checks failed at {step.label}: {reasons}"
                    await self._abort(release, colour_now, reached or step, summary)
                else:
                    await self.hold_rollout(release, step, reasons)
                return
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
                    await self._abort(release, colour_now, reached, summary, tail=result.output_tail)
                else:
                    await self._fail(release, summary, result.output_tail)
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

    async def _held(self, release_id: int) -> tuple[Release, str | None, list[Step], int] | None:
        """A verifying release, its plan and the index of its held verify step (None if not held)."""
        release = await self.db.run(self.db.sync.get_release, release_id)
        if release is None or release.state is not ReleaseState.VERIFYING:
            return None
        colour_now, steps = await self._plan(release)
        # The last completed step is recorded as the release's weight and colour; the held verify follows it.
        for index, step in enumerate(steps[:-1]):
            if (
                step.kind != "verify"
                and (step.weight, step.colour) == (release.weight, release.colour)
                and steps[index + 1].kind == "verify"
            ):
                return release, colour_now, steps, index + 1
        return None

    async def resume_rollout(self, release_id: int) -> None:
        """On-call said an inconclusive step looks good: continue with the step after the held verify."""
        held = await self._held(release_id)
        if held is None:
            return
        release, _, _, verify_index = held
        await self._run_rollout(release, start=verify_index + 1)

    async def abort_held(self, release_id: int, summary: str) -> None:
        """On-call chose to roll back a held rollout: return traffic to the previous release."""
        held = await self._held(release_id)
        if held is None:
            return
        release, colour_now, steps, verify_index = held
        await self._abort(release, colour_now, steps[verify_index - 1], summary)

    async def _abort(
        self, release: Release, colour_now: str | None, reached: Step, summary: str, tail: str | None = None
    ) -> None:
        """A rollout stopped after ``reached``: return traffic to the previous release, record the failure."""
        strategy = self.config.environments[release.env].strategy
        undone = True
        for step in abort_steps(strategy, colour_now, reached=reached):
            # A canary shift sets the NEW release's share of traffic (0: all back to the previous one);
            # a switch or redeploy targets what ran before.
            version = release.version if step.kind == "shift" else release.previous_version
            if version is None:
                await self.reply(release.id, render.thread_reply(f"↩️ {escape(step.label)}: no previous release"))
                undone = False
                continue
            result = await self._act(release, step, version=version)
            undone = undone and result.ok
            if result.ok:
                await self.db.run(self.db.sync.update_release, release.id, weight=step.weight, colour=step.colour)
            await self.reply(
                release.id,
                render.thread_reply(
                    f"↩️ {escape(step.label)}: {'done' if result.ok else escape(result.error or 'failed')}"
                ),
            )
        fields: dict[str, Any] = {"weight": 0} if undone and strategy.type == "canary" else {}
        await self._fail(release, summary, tail, **fields)

    async def _fail(
        self, release: Release, summary: str, tail: str | None, *, change_failure: bool = True, **fields: Any
    ) -> None:
        """The release failed: record ``summary`` and show it, with ``tail``, in the thread.

        A failed deploy is a change failure; a failed rollback is not (it changed nothing that shipped).
        """
        await self._finish(
            release,
            ReleaseState.FAILED,
            "release-bot",
            summary,
            error=summary,
            **({"change_failure": True} if change_failure else {}),
            **fields,
        )
        await self.reply(release.id, render.failure_reply(summary, tail))

    async def _finish(self, release: Release, state: ReleaseState, actor: str, detail: str, **fields: Any) -> None:
        await self.move(
            release.id,
            release.env,
            state,
            actor=actor,
            detail=detail,
            only_from=ACTIVE | {ReleaseState.AWAITING_APPROVAL},
            **fields,
        )
        await self.audit(actor, f"release.{state.value}", f"release:{release.id}", detail=detail)
        await self.refresh_parent(release.id)
        await self.changed(release.service)

    async def _after_success(self, release: Release) -> None:
        await self.cancel_superseded_checks(release)
        await self.schedule_checks(release)
        await self._commit_manifest_if_production(release)
        # Recorded last: a crash before this line makes start-up finish these steps (see Engine.start).
        await self.db.run(self.db.sync.record_event, release.id, AFTER_SUCCESS, actor="release-bot", now=self.now())

    async def _commit_manifest_if_production(self, release: Release) -> None:
        if self.config.manifest is not None and release.env == self.config.services[release.service].pipeline[-1]:
            await self._commit_manifest(release)

    async def _commit_manifest(self, release: Release) -> None:
        assert self.config.manifest is not None
        candidate = await self.db.run(self.db.sync.get_candidate, release.service, release.version)
        if candidate is None:
            return
        document = manifest_document(
            service=release.service,
            env=release.env,
            version=release.version,
            commit=candidate.commit,
            released_at=release.finished_at or self.now(),
            released_by=release.requested_by,
            release_id=release.id,
            components=candidate.components,
        )
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
