"""Running a release: the rollout steps through the provider, the thread story, and the outcome.

A rollback release runs here too: the provider's rollback, a canary shift back or a blue/green switch back.
Every provider step runs under a fence (bot/engine/fences.py): recorded before it starts, closed with how it
ended in the same transaction as what it changed on the release. A store write that fails during a release
stops it where it is; what it proved is handed to ``unrecorded`` (bot/engine/outcomes.py), which records the
release's outcome once writes work again.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import timedelta
from typing import Any, Literal

from bot.config import Config
from bot.core.manifest import manifest_document
from bot.core.models import Release, ReleaseKind, ReleaseState, RunRole
from bot.core.notes import ReleaseNotes
from bot.core.rollout import Step, abort_steps, idle_colour, plan_rollout, rollback_steps
from bot.core.verdicts import Verdict, worst
from bot.core.window_text import decision_text
from bot.engine.admitting import Reads, facts, plan_facts, read, refusal_words
from bot.engine.base import SYSTEM, Actor
from bot.engine.checks import Checks
from bot.engine.fences import DeployRuns, StepUnrecorded, end_run
from bot.engine.gates import Gates
from bot.engine.story import Story, change
from bot.logcontext import log_context
from bot.manifest_file import ManifestCommitError, commit_manifest
from bot.notes_link import notes_link
from bot.observability import Timer, deploy_timer
from bot.policy.admission import Code, Kind, Stage, admit
from bot.ports import ProviderLookup, Sleep
from bot.providers.base import DeployContext, StepResult
from bot.store import Store, StoreWriteError
from bot.views import render, thread

ACTIVE = {ReleaseState.QUEUED, ReleaseState.DEPLOYING, ReleaseState.VERIFYING}
Method = Literal["deploy", "shift", "rollback"]  # the provider call a step makes
# A store write failed during the release: (release id, the error, the step's record and result when a step's
# end is what could not be written).
Unrecorded = Callable[[int, StoreWriteError, int | None, StepResult | None], None]


class Rollouts:
    """Deploys a queued release (it holds the lock) to the end, recording every step."""

    def __init__(
        self,
        *,
        config: Config,
        story: Story,
        gates: Gates,
        checks: Checks,
        runs: DeployRuns,
        providers: ProviderLookup,
        sleep: Sleep,
        base_url: str | None,
        notes_link_key: bytes | None,
    ) -> None:
        self.config = config
        self.db = story.db
        self.story = story
        self.gates = gates
        self.checks = checks
        self.runs = runs
        self.providers = providers
        self.unrecorded: Unrecorded | None = None  # Outcomes.remember, connected by the Engine
        self.sleep = sleep
        self.base_url = base_url  # RELEASEBOT_PUBLIC_URL: where the full notes page is reachable
        self.notes_link_key = notes_link_key  # signs links to that page; None: no link is posted
        # Stops asked for while a rollout runs (request_stop): in memory, as the rollout itself is — a restart
        # interrupts every running release anyway (Recovery), and the click's claim is in the store.
        self._running: set[int] = set()
        self._stops: dict[int, str] = {}

    def request_stop(self, release_id: int, why: str) -> bool:
        """Stop the rollout of ``release_id`` at its next step boundary as a failed verify step does: traffic back to
        the previous release (``_abort``), the release failed with ``why``. Never interrupts a provider call or a
        verify pause; the pause ends, and no checks run after it. False when no rollout of it runs here now (held,
        ended, or past its last boundary: about to be marked succeeded)."""
        if release_id not in self._running:
            return False
        self._stops.setdefault(release_id, why)
        return True

    async def run_release(self, release: Release) -> None:
        """Deploy a queued release to the end; every log line meanwhile names it (see bot.logcontext)."""
        with log_context(release_id=release.id):
            await self._guarded(release.id, self._run_release(release))

    async def _guarded(self, release_id: int, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work``; a store write it could not make stops it there, and what the release proved so far is
        remembered, to be recorded once writes work again, rather than leaving it running with its lock held."""
        try:
            await work
        except StepUnrecorded as exc:
            assert self.unrecorded is not None, "the engine connects Outcomes to Rollouts"
            self.unrecorded(release_id, exc.error, exc.run_id, exc.result)
        except StoreWriteError as exc:
            assert self.unrecorded is not None, "the engine connects Outcomes to Rollouts"
            self.unrecorded(release_id, exc, None, None)

    async def _run_release(self, release: Release) -> None:
        """Deploy a queued release (it holds the lock) to the end, recording every step.

        ``release`` is the row as its caller just wrote it; the move to ``deploying`` only happens from
        ``queued``, so a second run of the same release (a race, a stale row) deploys nothing.
        """
        if release.state is not ReleaseState.QUEUED:
            return
        reads = await self._admitted(release)
        if reads is None:
            return
        now = self.story.now()

        def start(store: Store) -> tuple[Release | None, list[dict[str, Any]]]:
            started = change(
                store,
                release.id,
                ReleaseState.DEPLOYING,
                SYSTEM,
                "deploy started",
                {ReleaseState.QUEUED},
                now,
                audit="release.deploying",
                audit_detail={"version": release.version},
            )
            if started is None or started.kind is ReleaseKind.ROLLBACK:
                return (
                    started,
                    [],
                )  # a rollback cancels the checks of what it undoes when it has (Rollouts._run_rollback)
            # A newer release supersedes: the checks still pending for older releases here stop when it starts
            # (they would measure, and offer to roll back, what is being replaced).
            return started, store.cancel_measurements(superseded_in=(release.service, release.env, release.id))

        started, superseded = await self.db.unit(start)
        if started is None:  # another run of this release won the race: never deploy twice
            return
        if started.kind is not ReleaseKind.ROLLBACK:
            self._running.add(started.id)  # deploying from now on: a stop asked for meanwhile is kept for its steps
        try:
            await self.checks.superseded(started, superseded)
            await self.story.refresh_parent(started)
            if started.notes and not started.notes.get("unavailable"):
                notes = ReleaseNotes.from_dict(started.notes)
                await self.story.reply(started, thread.release_notes(started.version, notes, self._notes_url(started)))
            if started.kind is ReleaseKind.ROLLBACK:
                await self._run_rollback(started)
            else:
                await self._run_rollout(started, colour_now=reads.colour)
        finally:
            # Whatever ends this run (a write the store refused before the rollout began, too), a stop asked
            # later must not be promised for a rollout that no longer runs here.
            self._running.discard(started.id)
            self._stops.pop(started.id, None)

    async def _admitted(self, release: Release) -> Reads | None:
        """Admission again, right before the deploy: the plan may have gone stale while it waited for an
        approval or a queue (a newer release ran, a rollback happened, the window closed at 16:00, a test
        failed). Only a break-glass approval that overrode the window itself lets a closed window through;
        one that overrode checklist items alone is held to the window like any release. A refusal cancels
        the release (and frees its lock) before anything is deployed, and says why in its thread.

        The rows read (one round trip) when admitted; None when refused.
        """
        plan = plan_facts(release)
        forward = plan.kind is Kind.FORWARD  # a rollback never waits for a window or a checklist
        reads = await self.db.unit(
            lambda store: read(
                store, release.service, release.env, release.version, previous=None, ask_duplicates=False
            )
        )
        candidate = reads.candidate if forward else None
        decision = self.gates.windows.decide(release.env, self.story.now(), list(reads.freezes)) if forward else None
        checklist = self.gates.checklist_now(release, candidate, reads) if candidate is not None else None
        found = facts(reads, forward=forward, window=decision, checklist=checklist)
        admission = admit(plan, found.world, Stage.START)
        refused = [r for r in admission.refusals if r.code is not Code.WINDOW]
        if refused:
            plain = "; ".join(r.code.value for r in refused)
            done = await self.finish(
                release, ReleaseState.CANCELLED, SYSTEM, f"not admitted: {plain}", error=f"not admitted: {plain}"
            )
            reasons = [refusal_words(r, plan, found, self.config.zone) for r in refused]
            await self.story.reply(done or release, thread.not_started(reasons))
            return None
        if decision is not None and admission.has(Code.WINDOW):
            reason = decision_text(decision, self.config.zone)  # stored as plain text, escaped when shown
            done = await self.finish(
                release,
                ReleaseState.CANCELLED,
                SYSTEM,
                f"window closed: {reason}",
                error=f"window closed before the deploy started: {reason}",
            )
            await self.story.reply(done or release, thread.not_started_in_window(decision, self.config.zone))
            return None
        if release.forced_by is not None:
            await self.story.audit(
                Actor(release.forced_by),
                "release.break_glass",
                f"release:{release.id}",
                reason=release.force_reason,
                requested_by=release.requested_by,
                overridden=[str(i["item"]) for i in release.checklist if i.get("overridden_by")],
            )
        return reads

    def _notes_url(self, release: Release) -> str | None:
        """A signed link to the full notes page: Slack users have no API token to open /api/v1/notes."""
        if not self.base_url or not self.notes_link_key:
            return None
        return notes_link(
            self.base_url,
            self.notes_link_key,
            service=release.service,
            previous=release.previous_version,
            version=release.version,
            now=self.story.now(),
        )

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

    async def _act(
        self,
        release: Release,
        step: Step,
        role: RunRole,
        *,
        ctx: DeployContext | None = None,
        method: Method | None = None,
        sets: Callable[[StepResult], dict[str, Any]] | None = None,
    ) -> tuple[StepResult, Release]:
        """Run one provider step under a fence, then close its record with how it ended, in one transaction with
        the fields ``sets(result)`` gives the release: the result, and the release as it then is. Raises
        StepUnrecorded (with the result) when that transaction cannot be written.

        ``ctx`` and ``method`` default to the step's own: ``deploy`` for a deploy step, ``shift`` otherwise.
        """
        provider = self.providers(release.env)
        ctx = ctx or self._ctx(release, step)
        method = method or ("deploy" if step.kind == "deploy" else "shift")
        fence = self.runs.fence(
            release, label=step.label, action=method, role=role, weight=step.weight, colour=step.colour
        )
        with self._deploy_timer(release.env, "rollback" if method == "rollback" else step.kind):
            if method == "deploy":
                result = await provider.deploy(ctx, fence)
            elif method == "rollback":
                result = await provider.rollback(ctx, fence)
            else:
                result = await provider.shift(ctx, fence)
        now = self.story.now()
        fields = sets(result) if sets is not None else {}

        def end(store: Store) -> Release:
            end_run(store, fence.run_id, result, now)
            if fields:
                return store.update_release(release.id, **fields)
            found = store.get_release(release.id)
            assert found is not None
            return found

        try:
            return result, await self.db.unit(end)
        except StoreWriteError as exc:
            raise StepUnrecorded(fence.run_id, result, exc) from exc

    def _deploy_timer(self, env: str, action: str) -> Timer:
        """Times one provider call into ``releasebot_deploy_seconds``."""
        return deploy_timer(env, self.config.environments[env].deploy.provider, action)

    def _steps(self, release: Release, colour_now: str | None) -> list[Step]:
        """The release's rollout steps, given the colour serving before it (blue/green)."""
        return plan_rollout(self.config.strategy_for(release.service, release.env), current_colour=colour_now)

    async def _plan(self, release: Release) -> tuple[str | None, list[Step]]:
        """The colour serving before this release and the release's rollout steps.

        env_state only changes when a release succeeds, so the plan computed when resuming a held
        rollout is the plan it started with.
        """
        strategy = self.config.strategy_for(release.service, release.env)
        colour_now = await self.db.env_colour(release.service, release.env)
        return colour_now, plan_rollout(strategy, current_colour=colour_now)

    async def _run_rollout(self, release: Release, *, colour_now: str | None, start: int = 0) -> None:
        """Run the plan's steps from ``start``: deploy / shift / switch through the provider, verify between.

        ``colour_now`` is the colour serving before this release. After a verify step: FAIL aborts (traffic
        back to the previous release); INCONCLUSIVE holds the rollout at its current weight until on-call
        decides (never an automatic rollback).
        """
        self._running.add(release.id)
        try:
            await self._run_steps(release, colour_now=colour_now, start=start)
        finally:
            self._running.discard(release.id)
            self._stops.pop(release.id, None)

    async def _run_steps(self, release: Release, *, colour_now: str | None, start: int) -> None:
        steps = self._steps(release, colour_now)
        reached = next((s for s in reversed(steps[:start]) if s.kind != "verify"), None)
        last = max(i for i, s in enumerate(steps) if s.kind != "verify")
        for index in range(start, len(steps)):
            step = steps[index]
            if step.kind == "verify":
                verifying = await self.story.move(
                    release.id, release.env, ReleaseState.VERIFYING, actor=SYSTEM, detail=step.label, only_from=ACTIVE
                )
                release = verifying or release
                await self.story.reply(release, thread.verify_started(step.label))
                if step.pause.total_seconds() > 0:
                    await self.sleep(step.pause.total_seconds())
                stop = self._stops.pop(release.id, None)  # a stop asked for meanwhile fails this step unmeasured
                measured = [] if stop else await self.checks.verify_step(release, step)
                verdict = Verdict.FAIL if stop else (worst(m.verdict for m in measured) or Verdict.PASS)
                if verdict is Verdict.PASS:
                    continue
                reasons = "; ".join(m.summary for m in measured if m.verdict is not Verdict.PASS)
                if verdict is Verdict.FAIL:
                    summary = stop or f"checks failed at {step.label}: {reasons}"
                    await self._abort(release, colour_now, reached or step, summary)
                else:
                    await self.checks.hold_rollout(release, step, reasons)
                return

            def ran(result: StepResult, step: Step = step) -> dict[str, Any]:
                return {"output_tail": result.output_tail[-4000:], "weight": step.weight, "colour": step.colour}

            if stop := self._stops.pop(release.id, None):  # before the next provider step: undo what was reached
                await (self._abort(release, colour_now, reached, stop) if reached else self._fail(release, stop, None))
                return
            result, release = await self._act(
                release, step, RunRole.FINAL if index == last else RunRole.PARTIAL, sets=ran
            )
            if not result.ok:
                summary = f"{step.label} failed: {result.error or 'unknown error'}"
                if reached is not None:
                    await self._abort(release, colour_now, reached, summary, tail=result.output_tail)
                else:
                    await self._fail(release, summary, result.output_tail)
                return
            reached = step
            await self.story.reply(release, thread.step_done(step.label))
            if index < len(steps) - 1:  # after the last step, the outcome below edits the parent anyway
                await self.story.refresh_parent(release)
        # The last boundary: from here request_stop says no, and a click rolls the live release back instead.
        self._running.discard(release.id)
        if (stop := self._stops.pop(release.id, None)) and reached is not None:
            await self._abort(release, colour_now, reached, stop)
            return
        colour = reached.colour if reached is not None else None
        done = await self.finish(
            release,
            ReleaseState.SUCCEEDED,
            Actor(release.requested_by),
            "released",
            **({"colour": colour} if colour else {}),
        )
        if done is None:
            return
        await self.story.reply(done, thread.live(done.service, done.version, done.env))
        await self.after_success(done)

    async def _held(self, release_id: int) -> tuple[Release, str | None, list[Step], int] | None:
        """A verifying release, its plan and the index of its held verify step (None if not held)."""
        release = await self.db.get_release(release_id)
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
        with log_context(release_id=release_id):
            await self._guarded(release_id, self._resume_rollout(release_id))

    async def _resume_rollout(self, release_id: int) -> None:
        """On-call said an inconclusive step looks good: continue with the step after the held verify."""
        held = await self._held(release_id)
        if held is None:
            return
        release, colour_now, _, verify_index = held
        release = await self.db.update_release(release.id, held_step=None)
        await self._run_rollout(release, colour_now=colour_now, start=verify_index + 1)

    async def abort_held(self, release_id: int, summary: str) -> None:
        with log_context(release_id=release_id):
            await self._guarded(release_id, self._abort_held(release_id, summary))

    async def _abort_held(self, release_id: int, summary: str) -> None:
        """On-call chose to roll back a held rollout: return traffic to the previous release."""
        held = await self._held(release_id)
        if held is None:
            return
        release, colour_now, steps, verify_index = held
        release = await self.db.update_release(release.id, held_step=None)
        await self._abort(release, colour_now, steps[verify_index - 1], summary)

    async def _abort(
        self, release: Release, colour_now: str | None, reached: Step, summary: str, tail: str | None = None
    ) -> None:
        """A rollout stopped after ``reached``: return traffic to the previous release, record the failure."""
        strategy = self.config.strategy_for(release.service, release.env)
        undone = True
        for step in abort_steps(strategy, colour_now, reached=reached):
            # A canary shift sets the NEW release's share of traffic (0: all back to the previous one);
            # a switch or redeploy targets what ran before.
            version = release.version if step.kind == "shift" else release.previous_version
            if version is None:
                await self.story.reply(release.id, thread.undo_impossible(step.label))
                undone = False
                continue

            def undid(result: StepResult, step: Step = step) -> dict[str, Any]:
                return {"weight": step.weight, "colour": step.colour} if result.ok else {}

            result, release = await self._act(
                release, step, RunRole.UNDO, ctx=self._ctx(release, step, version), sets=undid
            )
            undone = undone and result.ok
            await self.story.reply(release.id, thread.undo_step(step.label, ok=result.ok, error=result.error))
        fields: dict[str, Any] = {"weight": 0} if undone and strategy.type == "canary" else {}
        await self._fail(release, summary, tail, **fields)

    async def _fail(
        self, release: Release, summary: str, tail: str | None, *, change_failure: bool = True, **fields: Any
    ) -> None:
        """The release failed: record ``summary`` and show it, with ``tail``, in the thread.

        A failed deploy is a change failure; a failed rollback is not (it changed nothing that shipped).
        """
        done = await self.finish(
            release,
            ReleaseState.FAILED,
            SYSTEM,
            summary,
            error=summary,
            **({"change_failure": True} if change_failure else {}),
            **fields,
        )
        await self.story.reply(done or release.id, render.failure_reply(summary, tail))

    async def finish(
        self, release: Release, state: ReleaseState, actor: Actor, detail: str, **fields: Any
    ) -> Release | None:
        """Record the outcome (with its audit entry), show it in the parent message; the release as it now is,
        or None when it had already ended."""
        done = await self.story.move(
            release.id,
            release.env,
            state,
            actor=actor,
            detail=detail,
            only_from=ACTIVE | {ReleaseState.AWAITING_APPROVAL},
            audit=f"release.{state.value}",
            audit_detail={"detail": detail},
            **fields,
        )
        await self.story.refresh_parent(done or release.id)
        await self.story.changed(release.service)
        return done

    async def after_success(self, release: Release) -> None:
        """Schedule this release's checks, commit the manifest; then mark these steps done. (Older releases'
        checks here were cancelled when this one started.)

        The store changes are one transaction, with the mark unless a manifest commit follows: a crash after
        it loses at most the thread's word about them (start-up arms the stored checks); a crash before it
        makes start-up run these steps again (see Recovery.finish_interrupted_successes).
        """
        planned = self.checks.planned(release)
        manifest = self._manifest_due(release)
        now = self.story.now()

        def settle(store: Store) -> None:
            if planned:
                store.schedule_measurements(release.id, planned)
            if not manifest:
                store.mark_after_success(release.id, now)

        await self.db.unit(settle)
        await self.checks.scheduled(release, planned)
        if manifest:
            await self._commit_manifest(release)
            await self.db.mark_after_success(release.id, now)

    def _manifest_due(self, release: Release) -> bool:
        """A release to production is recorded in the manifest repository, when one is configured."""
        return self.config.manifest is not None and release.env == self.config.production_env(release.service)

    async def commit_manifest_if_production(self, release: Release) -> None:
        if self._manifest_due(release):
            await self._commit_manifest(release)

    async def _commit_manifest(self, release: Release) -> None:
        assert self.config.manifest is not None
        candidate = await self.db.get_candidate(release.service, release.version)
        if candidate is None:
            return
        document = manifest_document(
            service=release.service,
            env=release.env,
            version=release.version,
            commit=candidate.commit,
            released_at=release.finished_at or self.story.now(),
            released_by=release.requested_by,
            release_id=release.id,
            components=candidate.components,
        )
        relative = self.config.manifest.file.replace("{service}", release.service)
        message = f"release {release.service} {release.version} to {release.env} (#{release.id})"
        try:
            sha = await commit_manifest(self.config.manifest.repo, relative, document, message)
        except (ManifestCommitError, ValueError) as exc:
            await self.story.reply(release.id, thread.manifest_failed(str(exc)))
            return
        if sha:
            await self.story.reply(release.id, thread.manifest_committed(sha))

    async def _run_rollback(self, release: Release) -> None:
        """Run a rollback release: the provider's rollback (or switch back), then mark the original."""
        live_colour = await self.db.env_colour(release.service, release.env)
        # rollback_steps wants the colour that served before the release being undone: the idle one now.
        before = idle_colour(live_colour) if live_colour is not None else None
        steps = rollback_steps(self.config.strategy_for(release.service, release.env), before)
        original = await self.db.get_release(release.rollback_of) if release.rollback_of else None
        if any(step.kind == "shift" for step in steps) and (
            original is None or original.previous_version != release.version
        ):
            # Setting the undone version's canary weight to 0 returns traffic to whatever ran before it; when the
            # target is an older release than that, only a full redeploy of the target gets there.
            steps = [Step("deploy", 100, None, timedelta(0), f"redeploy {release.version} to 100% of traffic")]
        result: StepResult | None = None
        for index, step in enumerate(steps):
            ctx = self._ctx(release, step)
            if step.kind == "shift" and release.rollback_target:
                # A canary shift sets the share of the version being rolled back (to 0); traffic returns
                # to the rollback target, given to the provider as the previous version.
                ctx = replace(ctx, version=release.rollback_target, previous_version=release.version)
            role = RunRole.FINAL if index == len(steps) - 1 else RunRole.PARTIAL
            method: Method = "shift" if step.kind in {"shift", "switch"} else "rollback"
            result, _ = await self._act(release, step, role, ctx=ctx, method=method)
            await self.story.reply(release.id, thread.rollback_step(step.label, ok=result.ok))
            if not result.ok:
                break
        if result is None or not result.ok:
            error = result.error if result else "no rollback step"
            tail = result.output_tail if result else None
            await self._fail(release, f"rollback failed: {error}", tail, change_failure=False, output_tail=tail)
            return
        await self.complete_rollback(release, original, result.output_tail, steps[-1].colour if steps else None)
        await self.story.reply(release.id, thread.back_on(release.env, release.version))

    async def complete_rollback(
        self, release: Release, original: Release | None, tail: str, colour: str | None
    ) -> None:
        """A rollback release's last step succeeded: record it, and mark the release it undid rolled back."""
        await self.finish(
            release,
            ReleaseState.SUCCEEDED,
            Actor(release.requested_by),
            "rolled back",
            output_tail=tail[-4000:],
            **({"colour": colour} if colour else {}),
        )
        if original is not None:
            await self.checks.cancel_checks(original.id, f"rolled back by release #{release.id}")
            await self.story.move(
                original.id,
                original.env,
                ReleaseState.ROLLED_BACK,
                actor=Actor(release.requested_by),
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
                finished_at=original.finished_at or self.story.now(),
            )
            await self.story.audit(
                Actor(release.requested_by), "release.rolled_back", f"release:{original.id}", by_release=release.id
            )
            await self.story.refresh_parent(original.id)
            await self.story.reply(
                original.id, thread.rolled_back_to(release.version, release.requested_by, release.id)
            )
