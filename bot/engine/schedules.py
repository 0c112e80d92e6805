"""Scheduled releases: `/release prod at 14:00`, `/release queue`, `/release cancel <id>`.

The request is validated when it is made (plan and permission, as the release itself would be) and stored as a
``scheduled_releases`` row; the row is the truth and APScheduler only wakes it (armed on start, like checks). At
its time a wake-up claims the row (pending → starting, once: a second wake-up, a restart or a racing sweep finds it
taken) and sends it through :meth:`Releases.request_release` as its requester, with the request id
``scheduled-<id>``: admitted again then. Started, it lives in its release's thread; refused, the service's channel
is told why, in one message. The outcome is written on the row (done with the release id, or refused).

A crash between the claim and that outcome leaves the row ``starting``; on start it is settled from the audit
trail: the release its request id recorded (done), or none (refused: nothing was released). A row whose time
passed while the bot was down runs on start when less than ``MISSED_AFTER`` (an hour) late, else it is marked
``missed`` and the channel told.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from bot.config import Config
from bot.core.grammar import Command, When
from bot.core.models import ReleaseKind
from bot.core.scheduling import Scheduled, ScheduledState, is_missed, resolve
from bot.engine.base import Actor
from bot.engine.errors import UserError
from bot.engine.gatekeeper import Context, Gatekeeper
from bot.engine.gates import Gates
from bot.engine.requests import Releases
from bot.engine.story import Story, Tasks
from bot.policy.permissions import Action
from bot.ports import Scheduler
from bot.store import Store
from bot.views import render
from bot.views import scheduled as view

log = logging.getLogger("release_bot.engine")


def job_key(scheduled_id: int) -> str:
    """The scheduler job id of one scheduled release (re-arming the row replaces its job)."""
    return f"scheduled:{scheduled_id}"


def request_id(scheduled_id: int) -> str:
    """The request id a scheduled release runs under: its release's audit entry carries it."""
    return f"scheduled-{scheduled_id}"


class Schedules:
    def __init__(
        self,
        *,
        config: Config,
        story: Story,
        tasks: Tasks,
        gate: Gatekeeper,
        gates: Gates,
        releases: Releases,
        scheduler: Scheduler | None,
    ) -> None:
        self.config = config
        self.db = story.db
        self.story = story
        self.tasks = tasks
        self.gate = gate
        self.gates = gates
        self.releases = releases
        self.scheduler = scheduler

    # --- asking -----------------------------------------------------------------------------------------
    async def schedule(self, actor: Actor, cmd: Command) -> Scheduled:
        """`/release <env> [version] at <when>`: validated now, stored, armed. Nothing is stored on a refusal."""
        assert cmd.at is not None and cmd.service is not None and cmd.env is not None
        service, env = cmd.service, cmd.env
        now = self.story.now()
        at = await self._resolve(cmd.at, service, env, now)
        if at <= now:
            raise UserError(view.in_the_past(at, now, self.config.zone))
        plan, _ = await self.releases.plan(actor, cmd)  # the plan's own checks and the right to release
        promote = plan.kind is ReleaseKind.PROMOTE

        def add(store: Store) -> Scheduled:
            row = store.add_scheduled(
                service=service,
                env=env,
                version=None if promote else plan.version,
                source_env=plan.source_env if promote else None,
                command=cmd.name,
                requested_by=actor.user,
                at=at,
                now=now,
            )
            store.audit(
                actor=actor.user,
                action="release.scheduled",
                subject=f"scheduled:{row.id}",
                now=now,
                detail={"env": env, "version": row.version, "source_env": row.source_env, "at": at.isoformat()},
                request_id=actor.request_id,
            )
            return row

        row = await self.db.unit(add)
        self._arm(row)
        return row

    async def _resolve(self, when: When, service: str, env: str, now: datetime) -> datetime:
        if when.day != "next-window":
            return resolve(when, now, self.config.zone)
        freezes = (await self.db.adhoc_freezes(service)).get(service, [])
        decision = self.gates.windows.decide(env, now, freezes)
        if decision.open:  # open now: the next opening is after this window closes
            if decision.next_close is None:
                raise UserError(view.window_always_open(env))
            decision = self.gates.windows.decide(env, decision.next_close, freezes)
        if decision.open or decision.next_open is None:
            raise UserError(view.no_window_opening(env))
        return decision.next_open

    async def queue(self, service: str) -> list[Scheduled]:
        """The pending scheduled releases of ``service``, soonest first."""
        return await self.db.scheduled_in([ScheduledState.PENDING], service)

    async def cancel(self, actor: Actor, service: str, scheduled_id: int) -> Scheduled:
        """`/release cancel <id>`: by its requester or the environment's releasers."""
        row = await self.db.get_scheduled(scheduled_id)
        if row is None or row.service != service:
            raise UserError(view.unknown_scheduled(scheduled_id, service))
        if row.state != ScheduledState.PENDING:
            raise UserError(view.not_pending(row))
        await self.gate.require(Action.CANCEL, actor.user, row.env, Context(requester=row.requested_by))
        if not await self.db.claim_scheduled(row.id, to=ScheduledState.CANCELLED, reason=f"cancelled by {actor.user}"):
            found = await self.db.get_scheduled(row.id)
            raise UserError(view.not_pending(found or row))  # it started (or was cancelled) meanwhile
        if self.scheduler is not None:
            self.scheduler.cancel(job_key(row.id))
        await self.story.audit(actor, "release.schedule_cancelled", f"scheduled:{row.id}")
        return row

    # --- waking ---------------------------------------------------------------------------------------------
    def arm_schedule(self) -> None:
        """On start: ask the scheduler to wake us at every pending scheduled release (the rows drive it)."""
        if self.scheduler is not None:
            self.tasks.spawn(self._arm_pending(), "arm-scheduled-releases")

    async def _arm_pending(self) -> None:
        for row in await self.db.scheduled_in([ScheduledState.PENDING]):
            self._arm(row)

    def _arm(self, row: Scheduled) -> None:
        if self.scheduler is not None:
            self.scheduler.at(row.at, job_key(row.id), self._wake)

    async def _wake(self) -> None:
        # Tracked like any background work, so shutdown and tests can await it.
        self.tasks.spawn(self.run_due(), "scheduled-releases-due")

    async def run_due(self) -> int:
        """Take every pending scheduled release whose time has come, each exactly once; how many this call took."""
        now = self.story.now()
        taken = 0
        for row in await self.db.scheduled_in([ScheduledState.PENDING]):
            if row.at <= now:
                taken += await self._take(row, now)
        return taken

    async def _take(self, row: Scheduled, now: datetime) -> int:
        zone = self.config.zone
        if is_missed(row.at, now):
            if not await self.db.claim_scheduled(row.id, to=ScheduledState.MISSED, reason="the bot was not running"):
                return 0
            await self.story.audit(
                Actor(row.requested_by, request_id=request_id(row.id)), "release.missed", f"scheduled:{row.id}"
            )
            await self._tell(row, view.missed(row, zone))
            return 1
        if not await self.db.claim_scheduled(row.id, to=ScheduledState.STARTING):
            return 0  # another wake-up took it, or it was cancelled meanwhile
        if self.scheduler is not None:
            self.scheduler.cancel(job_key(row.id))  # taken early (on start, by a sweep): its job has nothing to do
        channel = self.config.services[row.service].channel
        actor = Actor(user=row.requested_by, channel=channel, request_id=request_id(row.id))
        cmd = Command(
            name=row.command, service=row.service, env=row.env, version=row.version, source_env=row.source_env
        )
        try:
            result = await self.releases.request_release(actor, cmd)
        except UserError as exc:
            await self._refused(row, str(exc))
            return 1
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception("scheduled release %s failed (error id %s)", row.id, error_id)
            await self._refused(row, render.crash(error_id).text)
            return 1
        await self.db.settle_scheduled(row.id, state=ScheduledState.DONE, reason=None, release_id=result.release.id)
        return 1

    async def _refused(self, row: Scheduled, reason: str) -> None:
        await self.db.settle_scheduled(row.id, state=ScheduledState.REFUSED, reason=reason, release_id=None)
        await self._tell(row, view.refused(row, reason, self.config.zone))

    async def _tell(self, row: Scheduled, message: render.Message) -> None:
        channel = self.config.services[row.service].channel
        try:
            await self.story.notifier.post(channel, message.text, message.blocks)
        except Exception:
            log.exception("could not tell %s about scheduled release %s", channel, row.id)

    async def recover(self) -> None:
        """On start: settle rows a crash left starting, take the ones now due (or missed), arm the rest."""
        for row in await self.db.scheduled_in([ScheduledState.STARTING]):
            release_id = await self.db.release_of_request(request_id(row.id))
            if release_id is not None:
                await self.db.settle_scheduled(row.id, state=ScheduledState.DONE, reason=None, release_id=release_id)
            else:
                await self._refused(row, view.STOPPED_WHILE_STARTING)
        await self.run_due()
        self.arm_schedule()
