"""How a release ended, recorded from what its deploy steps prove, when it could not be recorded as it happened.

Two ways a release's outcome misses the store:

- **A restart.** The previous process died while a release ran. On start (:meth:`Outcomes.recover`, before
  Recovery interrupts what is left) each running release's last deploy step (bot/engine/fences.py) is looked
  at through its provider: a step that ended while the bot was down is recorded from what it left (a command's
  status file, the remote run); one that still runs is *adopted*: its release stays ``deploying`` and keeps its
  environment's lock (admission refuses Retry and new releases there, saying why), its thread says so, and the
  bot follows it in the background up to the provider's timeout from the step's start, then stops it. A step
  that ended in a way nothing proves is recorded ``unknown`` and its release ``interrupted``, and the thread
  says to check the environment.
- **A store that refuses writes** (full disk, I/O error). The release stops at the write that failed; what its
  steps proved is kept in memory (:meth:`Outcomes.remember`), /healthz reports it, and a background retry with
  bounded backoff records the outcome once writes work again, then tells the thread and the channel in one
  message each. Were the bot restarted meanwhile, the first way records it.

Either way the release's last step decides (:func:`settled_state`): its record (role, outcome) says whether it
succeeded, failed, or stopped partway; no lock is held after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.config import Config
from bot.core.models import DeployRun, Release, ReleaseKind, ReleaseState, RunOutcome, RunRole
from bot.engine.base import SYSTEM, Actor, RetryPolicy
from bot.engine.fences import DeployRuns, end_run, outcome_of
from bot.engine.runner import ACTIVE, Rollouts
from bot.engine.story import Story, Tasks
from bot.logcontext import log_context
from bot.ports import ProviderLookup
from bot.providers.base import StepResult, Unproven
from bot.store import StoreWriteError
from bot.views import render, thread
from bot.views.thread import StepEnd

log = logging.getLogger("release_bot.engine")

Ended = StepResult | Unproven


@dataclass
class _Waiting:
    """A release whose outcome the store refused: since when, why, and the step result it had in hand."""

    since: datetime
    error: str
    run_id: int | None
    result: Ended | None


def settled_state(run: DeployRun | None, outcome: RunOutcome | None) -> ReleaseState:
    """A running release's outcome from its last step: a final step that succeeded completes it; a failed step,
    or any step that was undoing a failure, fails it; anything else (nothing ran, a partial step, an outcome
    nothing proves) interrupts it, offering Retry / Roll back."""
    if run is None or outcome is None or outcome is RunOutcome.UNKNOWN:
        return ReleaseState.INTERRUPTED
    if run.role is RunRole.UNDO or outcome is RunOutcome.FAILED:
        return ReleaseState.FAILED
    return ReleaseState.SUCCEEDED if run.role is RunRole.FINAL else ReleaseState.INTERRUPTED


def how_it_ended(run: DeployRun, ended: Ended | None) -> str:
    """A step's end in a few words: its exit status, its error, or why nothing proves it."""
    if isinstance(ended, Unproven):
        return ended.reason
    if ended is not None:
        error, exit_status, ok = ended.error, ended.exit_status, ended.ok
    else:
        error, exit_status, ok = run.error, run.exit_status, run.outcome is RunOutcome.SUCCEEDED
    if error:
        return error
    if exit_status is not None:
        return f"exit status {exit_status}"
    return "it succeeded" if ok else "it failed"


class Outcomes:
    """Records what releases' deploy steps prove after a restart or a store write failure (see the module doc)."""

    def __init__(
        self,
        *,
        config: Config,
        story: Story,
        tasks: Tasks,
        rollouts: Rollouts,
        runs: DeployRuns,
        providers: ProviderLookup,
        retry: RetryPolicy,
    ) -> None:
        self.config = config
        self.db = story.db
        self.story = story
        self.tasks = tasks
        self.rollouts = rollouts
        self.runs = runs
        self.providers = providers
        self.retry = retry
        self._waiting: dict[int, _Waiting] = {}
        self._retrying: asyncio.Task[None] | None = None
        self._writes_work = asyncio.Event()  # /healthz saw a write go through: try again now
        self._probed_at = -retry.probe_every
        self._probe_error: str | None = None

    # --- after a restart ---------------------------------------------------------------------------
    async def recover(self) -> None:
        """On start, before running releases are interrupted: record what each one's last step proves, and adopt
        the steps that still run (their releases keep their locks; Recovery leaves them running). Step files older
        than a month are deleted (deploys/ would otherwise grow for ever)."""
        await asyncio.to_thread(self.runs.prune, self.story.now())
        for release in await self.db.running_releases():
            run = await self.db.last_deploy_run(release.id)
            if run is None:
                continue  # nothing was started: Recovery interrupts it
            with log_context(release_id=release.id):
                if run.ended_at is not None:
                    # Killed after its last step's end was recorded: complete or fail it as that end says; a
                    # release between steps is interrupted by Recovery, as before fences.
                    if settled_state(run, run.outcome) is not ReleaseState.INTERRUPTED:
                        await self._settle(release, run, None, when="before")
                    continue
                left = self.runs.left(run)
                ended = await self.providers(release.env).inspect(left)
                if ended is not None:
                    await self._close_and_settle(release, run, ended, when="while_down")
                    continue
                await self.db.adopt_deploy_run(run.id, self.story.now())
                what = f"process group {run.pgid}" if run.pgid is not None else f"remote run {run.remote_id}"
                zone = self.config.zone
                await self.story.reply(
                    release,
                    thread.step_left_running(
                        run.step, release.env, what, started=run.started_at, until=run.deadline_at, zone=zone
                    ),
                )
                self.tasks.spawn(self._follow(release, run), f"follow-run-{run.id}")

    async def _follow(self, release: Release, run: DeployRun) -> None:
        """Wait for an adopted step to end (the provider stops it at its deadline), then record it."""
        with log_context(release_id=release.id):
            ended = await self.providers(release.env).follow(self.runs.left(run))
            try:
                await self._close_and_settle(release, run, ended, when="now")
            except StoreWriteError as exc:
                self.remember(release.id, exc, run.id, ended)

    async def _close_and_settle(self, release: Release, run: DeployRun, ended: Ended, *, when: StepEnd) -> None:
        now = self.story.now()
        await self.db.unit(lambda store: end_run(store, run.id, ended, now))
        await self._settle(release, run, ended, when=when)

    async def _settle(self, release: Release, run: DeployRun, ended: Ended | None, *, when: StepEnd) -> None:
        """Record a running release's outcome from its last step (``ended``: how it ended, when known in memory;
        else the step's record says) and tell its thread once."""
        outcome = outcome_of(ended) if ended is not None else run.outcome
        state = settled_state(run, outcome)
        how = how_it_ended(run, ended)
        if state is ReleaseState.INTERRUPTED:
            why = (
                thread.step_unproven(run.step, how, release.env)
                if outcome is RunOutcome.UNKNOWN
                else thread.step_ended_partway(run.step, how)
            )
            await self._interrupt(release, run, why, progressed=outcome is RunOutcome.SUCCEEDED)
            return
        done = await self._record(release, run, state, ended, how)
        tail = ended.output_tail if ended is not None else (done or release).output_tail
        reply = thread.step_ended(run.step, how, state, ended=when, tail=tail)
        await self.story.reply(done or release, reply)

    async def _record(
        self, release: Release, run: DeployRun, state: ReleaseState, ended: Ended | None, how: str
    ) -> Release | None:
        """Move a running release to SUCCEEDED (with its after-success steps, or a rollback's completion) or
        FAILED, as the live path would have; the release as it now is."""
        tail = ended.output_tail if ended is not None else release.output_tail or ""
        if state is ReleaseState.SUCCEEDED:
            if release.kind is ReleaseKind.ROLLBACK:
                original = await self.db.get_release(release.rollback_of) if release.rollback_of else None
                await self.rollouts.complete_rollback(release, original, tail, run.colour)
                return await self.db.get_release(release.id)
            done = await self.rollouts.finish(
                release,
                ReleaseState.SUCCEEDED,
                Actor(release.requested_by),
                "released",
                weight=run.weight,
                output_tail=tail[-4000:],
                **({"colour": run.colour} if run.colour else {}),
            )
            if done is not None:
                await self.rollouts.after_success(done)
            return done
        summary = (
            f"{run.step} failed: {how}" if run.role is not RunRole.UNDO else f"undoing the rollout: {run.step}: {how}"
        )
        return await self.rollouts.finish(
            release,
            ReleaseState.FAILED,
            SYSTEM,
            summary,
            error=summary,
            output_tail=tail[-4000:],
            **({"change_failure": True} if release.kind is not ReleaseKind.ROLLBACK else {}),
        )

    async def _interrupt(self, release: Release, run: DeployRun | None, why: str, *, progressed: bool) -> None:
        """Interrupt a running release (``progressed``: its last step succeeded, so its weight and colour hold)."""
        fields: dict[str, Any] = {"weight": run.weight, "colour": run.colour} if run is not None and progressed else {}
        done = await self.story.move(
            release.id,
            release.env,
            ReleaseState.INTERRUPTED,
            actor=SYSTEM,
            detail="stopped where the bot lost track of it",
            only_from=ACTIVE,
            audit="release.interrupted",
            **fields,
        )
        if done is None:
            return
        await self.story.refresh_parent(done)
        await self.story.reply(done, render.interrupted_reply(done, why))

    # --- a store that refuses writes -------------------------------------------------------------------
    def remember(self, release_id: int, error: StoreWriteError, run_id: int | None, result: Ended | None) -> None:
        """A write failed during a release: keep what it proved, and record it once writes work again."""
        known = self._waiting.get(release_id)
        since = known.since if known is not None else self.story.now()
        if known is not None and result is None:  # a later failure while settling: keep the step in hand
            run_id, result = known.run_id, known.result
        self._waiting[release_id] = _Waiting(since, str(error), run_id, result)
        # A write that failed is a probe that failed: /healthz says so at once, not at its next probe.
        self._probe_error, self._probed_at = str(error), time.monotonic()
        log.error("could not record release %s (%s): retrying until the store takes it", release_id, error)
        if self._retrying is None or self._retrying.done():
            self._retrying = self.tasks.spawn(self._retry_waiting(), "record-waiting-outcomes")

    async def _retry_waiting(self) -> None:
        """Try the waiting outcomes again with bounded backoff (sooner when /healthz saw a write go through)."""
        delay = self.retry.first
        while self._waiting:
            self._writes_work.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._writes_work.wait()
            try:
                await self.db.probe_write(self.story.now())
                for release_id in list(self._waiting):
                    await self._record_waiting(release_id, self._waiting[release_id])
                    del self._waiting[release_id]
            except StoreWriteError as exc:
                log.warning("the store still refuses writes (%s); trying again in %.1fs", exc, delay)
            except Exception:  # not the store's fault: keep trying, and keep /healthz saying so
                log.exception("recording a waiting outcome failed; trying again in %.1fs", delay)
            else:
                delay = self.retry.first
                continue
            delay = min(delay * 2, self.retry.cap)

    async def _record_waiting(self, release_id: int, waiting: _Waiting) -> None:
        """Record one waiting outcome now that writes work; tell its thread and the channel once."""
        now = self.story.now()
        if waiting.run_id is not None and waiting.result is not None:
            run_id, result = waiting.run_id, waiting.result
            await self.db.unit(lambda store: end_run(store, run_id, result, now))
        release = await self.db.get_release(release_id)
        if release is None:
            return
        with log_context(release_id=release_id):
            if release.state.running:
                await self._settle_waiting(release, waiting)
            elif release.state is ReleaseState.SUCCEEDED:
                # Its outcome was recorded; the write that failed was among its after-success steps.
                await self.rollouts.after_success(release)
            done = await self.db.get_release(release_id) or release
            if done.state.running:
                return  # its step still runs: it was adopted, and its end is recorded when it comes
            zone = self.config.zone
            notice = thread.outcome_waited_notice(
                done.service, done.version, done.env, done.id, done.state, since=waiting.since, zone=zone
            )
            channel = self.config.services[done.service].channel
            try:
                await self.story.notifier.post(channel, notice.text, notice.blocks)
            except Exception:
                log.exception("could not tell the channel that release %s was recorded late", done.id)

    async def _settle_waiting(self, release: Release, waiting: _Waiting) -> None:
        zone = self.config.zone
        run = await self.db.last_deploy_run(release.id)
        if run is not None and run.ended_at is None:
            # Its step's end was never known in memory (a remote step cut off mid-way): ask its provider.
            ended = await self.providers(release.env).inspect(self.runs.left(run))
            if ended is None:
                await self.db.adopt_deploy_run(run.id, self.story.now())
                self.tasks.spawn(self._follow(release, run), f"follow-run-{run.id}")
                return
            run_id, found, now = run.id, ended, self.story.now()
            await self.db.unit(lambda store: end_run(store, run_id, found, now))
            run = await self.db.last_deploy_run(release.id)
        state = settled_state(run, run.outcome if run is not None else None)
        if state is ReleaseState.INTERRUPTED:
            why = thread.outcome_waited_why(
                release.service, release.version, release.env, since=waiting.since, error=waiting.error, zone=zone
            )
            if run is not None and run.outcome is RunOutcome.UNKNOWN:
                why += " " + thread.outcome_unknown(run.step, how_it_ended(run, None), release.env)
            await self._interrupt(release, run, why, progressed=run is not None and run.outcome is RunOutcome.SUCCEEDED)
            return
        assert run is not None
        ended = waiting.result if waiting.run_id == run.id else None
        done = await self._record(release, run, state, ended, how_it_ended(run, ended))
        tail = ended.output_tail if ended is not None else (done or release).output_tail
        reply = thread.outcome_waited(state, since=waiting.since, error=waiting.error, zone=zone, tail=tail)
        await self.story.reply(done or release, reply)

    # --- health ------------------------------------------------------------------------------------------
    async def health(self) -> list[str]:
        """What keeps the bot from being healthy, in words (empty: healthy): the store refusing writes (a real
        write, at most every ``probe_every`` seconds), and outcomes waiting to be recorded."""
        if time.monotonic() - self._probed_at >= self.retry.probe_every:
            self._probed_at = time.monotonic()
            try:
                await self.db.probe_write(self.story.now())
            except Exception as exc:  # whatever stops a write makes the bot unhealthy
                self._probe_error = str(exc) or type(exc).__name__
            else:
                self._probe_error = None
                self._writes_work.set()
        problems = []
        if self._probe_error is not None:
            problems.append(f"the store cannot write: {self._probe_error}")
        if self._waiting:
            waiting = ", ".join(f"#{release_id}" for release_id in sorted(self._waiting))
            problems.append(f"outcomes not recorded yet (the store refused them): release {waiting}")
        return problems
