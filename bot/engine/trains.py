"""Release trains: scheduled departures that carry what the previous stage runs, per service.

The same model as scheduled releases (bot/engine/schedules.py): rows are the truth, APScheduler only wakes
them. Each train keeps one departure not yet settled in ``train_departures`` (the next one, planned on start
and after each departure settles); it is armed twice, at its boarding call and at its time. A wake-up takes
every row that is due, each transition claimed once in the store (pending → boarding → departed | held; or
closed | missed), so a second wake-up, a restart or a racing sweep finds it taken.

At the boarding call (``notice`` before) the window policy decides the departure: closed (holiday, freeze,
cut-off, outside hours) → it does not run, and each service's channel is told why and the next departure that
will. Open → each carried service's boarding row is written (what its source stage runs, its release notes
summary and checklist now; nothing new → skipped quietly) and the call is posted with Hold and Leave off. The
row remembers the call's message, and the call is edited in place from then on (held, left off, departed with
its release, refused, missed, cancelled), as an approval's request message is.

At departure each boarding service is claimed (boarding → boarded; refused by the store while that version
boarded this environment with a release on its way or shipped, the rule the call's evaluation uses too; a
version whose earlier release did not ship boards again) and sent through :meth:`Releases.request_release` as
the bot (the train is configured, not asked for: the permission table's ``system`` role) with the request id
``train-<departure>-<service>``: admission, checklist, lock, rollout and checks as any release, in its own
thread. A refusal (a failing checklist, a lock…) leaves it off with the reason, told in its channel.

Restarts: a boarded row with no release is settled from the audit trail (its request id), as schedules do; a
departure whose time passed while the bot was down runs on start only while the window it fell in is still
open (:func:`bot.core.trains.still_open`), else it is marked missed and its channels are told; the slots after
it that were slept through are stored missed and told in one capped message. A call that never went out is
posted; a pending departure the config no longer has (timetable changed, train removed) is cancelled.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.config import Config, Train
from bot.config.trains import carried
from bot.core.grammar import Command
from bot.core.notes import ReleaseNotes
from bot.core.trains import (
    Aboard,
    Boarding,
    BoardingState,
    DepartureState,
    TrainDeparture,
    TrainOutlook,
    boards_at,
    decide,
    departures,
    is_slot,
    next_running,
    passed,
    still_open,
    upcoming,
)
from bot.engine.base import Actor, system_actor
from bot.engine.errors import NotPermitted, UserError
from bot.engine.gatekeeper import Context, Gatekeeper
from bot.engine.gates import Gates
from bot.engine.requests import Releases
from bot.engine.story import Story, Tasks
from bot.policy.permissions import Action
from bot.ports import Scheduler
from bot.store import Store
from bot.views import render
from bot.views import trains as view

log = logging.getLogger("release_bot.engine")
SHOWN = 5  # departures an outlook lists
MISSED_LISTED = 10  # missed departures one message lists after an outage (the latest; the rest are counted)
NOT_RUNNING = "the bot was not running"
RETIMED = "the train's timetable changed"
REMOVED = "the train was removed from the config"
_SECOND = timedelta(seconds=1)  # "after this departure": slots are whole minutes


def request_id(departure_id: int, service: str) -> str:
    """The request id one service's release on one departure runs under (its audit entry carries it)."""
    return f"train-{departure_id}-{service}"


def job_key(departure_id: int, what: str) -> str:
    return f"train:{departure_id}:{what}"


def _unsettled(row: Boarding) -> bool:
    """A row of a departed departure a crash left unfinished (claimed without a release, or never claimed)."""
    return row.state == BoardingState.BOARDING or (row.state == BoardingState.BOARDED and row.release_id is None)


@dataclass(frozen=True)
class _Planned:
    """One service's boarding row, worked out before the departure's claim writes it."""

    service: str
    version: str
    state: str
    reason: str | None = None
    checklist_ok: bool | None = None
    notes: str | None = None


class Trains:
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
        self.windows = gates.windows
        self.scheduler = scheduler
        # The same release path; its permission check asks as the bot (system_actor), the table's ``system`` role.
        self.releases = releases

    # --- what a train carries --------------------------------------------------------------------------
    def _train(self, env: str) -> Train | None:
        return self.config.trains.get(env)

    def _services(self, env: str, train: Train) -> list[str]:
        return carried(train, env, {name: svc.pipeline for name, svc in self.config.services.items()})

    def _source(self, train: Train, service: str, env: str) -> str | None:
        return train.from_ or self.config.previous_stage(service, env)

    async def _aboard(self, env: str, train: Train) -> list[Aboard]:
        found = []
        for service in self._services(env, train):
            source = self._source(train, service, env)
            running = await self.db.env_state(service, source) if source is not None else None
            current = await self.db.env_state(service, env)
            version = running.version if running is not None else None
            new = (
                version is not None
                and (current is None or current.version != version)
                and not await self.db.already_boarded(env, service, version)
            )
            found.append(Aboard(service, version, source, new))
        return found

    # --- planning and waking ---------------------------------------------------------------------------
    async def plan_departures(self) -> bool:
        """Each train's next departure stored (once: a second call finds it) and armed. Departures slept through
        since the last one (the bot was down) are stored missed and reported; the latest of them runs instead
        when the window it fell in is still open. True when a departure planned here is due already."""
        now = self.story.now()
        due = False
        for env, train in self.config.trains.items():
            if await self.db.departures_in([DepartureState.PENDING, DepartureState.BOARDING], env):
                continue
            last = await self.db.last_departure(env)
            at = (
                await self._catch_up(env, train, last, now)
                if last is not None and await self._slept(env, last)
                else None
            )
            if at is None:
                start = now if last is None else max(now, last.at + _SECOND)
                at = next(departures(train.slots(), start, self.config.zone), None)
            if at is not None:
                await self.db.add_departure(env=env, at=at, boards_at=boards_at(at, train.notice), now=now)
                due = due or boards_at(at, train.notice) <= now
        for dep in await self.db.departures_in([DepartureState.PENDING, DepartureState.BOARDING]):
            self._arm(dep)
        return due

    async def _slept(self, env: str, last: TrainDeparture) -> bool:
        """Were the slots since ``last`` the train's to run, so that passing them means the bot slept through
        them? Not when a departure was cancelled after ``last`` was planned: the train was removed (and is back
        now) or re-timed, so the slots in between belonged to no timetable the bot was keeping."""
        return not any(c.id > last.id for c in await self.db.departures_in([DepartureState.CANCELLED], env))

    async def _catch_up(self, env: str, train: Train, last: TrainDeparture, now: datetime) -> datetime | None:
        """The departures after ``last`` and before ``now`` that would have run (their window was open): the
        latest one, when its window is still open, is returned to run now (unless ``last`` itself departed late
        at this start: one late departure per outage); the others are stored missed and each service's channel
        gets one message listing them (the latest :data:`MISSED_LISTED`, the rest counted). Those whose window
        was closed anyway were never going to run and are not reported."""
        slept = [
            at
            for at in passed(train.slots(), last.at + _SECOND, now, self.config.zone)
            if decide(self.windows, env, at)[0].runs
        ]
        if not slept:
            return None
        late = last.state != DepartureState.DEPARTED and still_open(self.windows, env, slept[-1], now)
        runs_now = slept[-1] if late else None
        if runs_now is not None:
            slept = slept[:-1]
        marked = await self.db.add_missed(
            env=env, instants=[(at, boards_at(at, train.notice)) for at in slept], reason=NOT_RUNNING, now=now
        )
        if marked:
            for dep in marked:
                await self.story.audit(system_actor(), "train.missed", f"departure:{dep.id}", env=env)
            shown = [dep.at for dep in marked[-MISSED_LISTED:]]
            following = runs_now or next_running(train.slots(), self.windows, env, now)
            message = view.missed_many(env, shown, len(marked) - len(shown), following, self.config.zone)
            for service in self._services(env, train):
                await self._tell(service, message)
        return runs_now

    def _arm(self, dep: TrainDeparture) -> None:
        if self.scheduler is None:
            return
        if dep.state == DepartureState.PENDING:
            self.scheduler.at(dep.boards_at, job_key(dep.id, "board"), self._wake)
        self.scheduler.at(dep.at, job_key(dep.id, "depart"), self._wake)

    def _disarm(self, dep: TrainDeparture) -> None:
        if self.scheduler is not None:
            self.scheduler.cancel(job_key(dep.id, "board"))
            self.scheduler.cancel(job_key(dep.id, "depart"))

    async def _wake(self) -> None:
        # Tracked like any background work, so shutdown and tests can await it.
        self.tasks.spawn(self.run_due(), "train-departures-due")

    async def run_due(self) -> int:
        """Take every boarding call and departure that is due, each exactly once; how many this call took."""
        now = self.story.now()
        taken = await self._take_due(now)
        if await self.plan_departures():  # a departure slept through whose window is still open: it runs now
            taken += await self._take_due(now)
            await self.plan_departures()
        return taken

    async def _take_due(self, now: datetime) -> int:
        taken = 0
        for dep in await self.db.departures_in([DepartureState.PENDING, DepartureState.BOARDING]):
            if dep.env not in self.config.trains:
                continue  # a train removed from the config: its row stays as it was
            if dep.state == DepartureState.PENDING and dep.boards_at <= now:
                taken += await self._board(dep, now)
                dep = await self.db.get_departure(dep.id) or dep
            if dep.state == DepartureState.BOARDING and dep.at <= now:
                taken += await self._depart(dep, now)
        return taken

    # --- the boarding call -----------------------------------------------------------------------------
    async def _board(self, dep: TrainDeparture, now: datetime) -> int:
        train = self.config.trains[dep.env]
        departure, decision = decide(self.windows, dep.env, dep.at)
        if not departure.runs:
            if not await self.db.move_departure(
                dep.id,
                frm=DepartureState.PENDING,
                to=DepartureState.CLOSED,
                now=now,
                reason="; ".join(r.text for r in decision.reasons),
            ):
                return 0
            self._disarm(dep)
            following = next_running(train.slots(), self.windows, dep.env, dep.at + _SECOND)
            for service in self._services(dep.env, train):
                await self._tell(service, view.closed(dep, decision.reasons, following, self.config.zone))
            return 1
        if dep.at <= now and not still_open(self.windows, dep.env, dep.at, now):
            return await self._missed(dep, DepartureState.PENDING, now)
        planned = [await self._evaluate(dep, train, service) for service in self._services(dep.env, train)]

        def write(store: Store) -> list[Boarding] | None:
            if not store.move_departure(dep.id, frm=DepartureState.PENDING, to=DepartureState.BOARDING, now=now):
                return None  # another wake-up boarded it
            return [
                store.add_boarding(
                    departure_id=dep.id,
                    env=dep.env,
                    service=p.service,
                    version=p.version,
                    state=p.state,
                    reason=p.reason,
                    checklist_ok=p.checklist_ok,
                    notes=p.notes,
                )
                for p in planned
                if p is not None
            ]

        rows = await self.db.unit(write)
        if rows is None:
            return 0
        await self.story.audit(system_actor(), "train.boarding", f"departure:{dep.id}", env=dep.env)
        boarding = await self.db.get_departure(dep.id) or dep
        for row in rows:
            await self._post_call(boarding, row)
            await self.story.changed(row.service)
        return 1

    # --- the boarding call, one message per service edited in place --------------------------------------
    def _call(self, dep: TrainDeparture, row: Boarding) -> render.Message:
        train = self._train(dep.env)
        source = (self._source(train, row.service, dep.env) if train is not None else None) or "?"
        return view.boarding_call(dep, row, source, self.config.zone)

    async def _post_call(self, dep: TrainDeparture, row: Boarding) -> None:
        """Post a row's boarding call as things stand and remember it (a failed post leaves it unposted, for
        recovery to post at the next start)."""
        service = self.config.services.get(row.service)
        if service is None:
            return
        message = self._call(dep, row)
        try:
            ts = await self.story.notifier.post(service.channel, message.text, message.blocks)
        except Exception:
            log.exception("could not post the boarding call of %s", row.service)
            return
        await self.db.set_call(row.id, channel=service.channel, ts=ts)

    async def _show_calls(self, departure_id: int, service: str | None = None) -> None:
        """Edit the boarding calls of a departure (or of one service on it) to show where things stand now."""
        dep = await self.db.get_departure(departure_id)
        if dep is None:
            return
        for row in await self.db.boardings(departure_id):
            if (service is None or row.service == service) and row.channel and row.message_ts:
                message = self._call(dep, row)
                try:
                    await self.story.notifier.update(row.channel, row.message_ts, message.text, message.blocks)
                except Exception:
                    log.exception("could not update the boarding call of %s", row.service)

    async def _evaluate(self, dep: TrainDeparture, train: Train, service: str) -> _Planned | None:
        """One service's boarding row: what it carries, its notes summary and checklist now; None when it has
        nothing new (skipped quietly, no row): the target runs it already, or it boarded an earlier departure
        whose release is on its way or shipped it. The departure's claim refuses by that same store rule
        (``bot.store.trains.TrainStore.already_boarded``), so a call never promises a boarding the departure refuses; a
        version whose earlier release did not ship (failed, rolled back, cancelled) boards again."""
        source = self._source(train, service, dep.env)
        running = await self.db.env_state(service, source) if source is not None else None
        current = await self.db.env_state(service, dep.env)
        if running is None or (current is not None and current.version == running.version):
            return None
        if await self.db.already_boarded(dep.env, service, running.version):
            return None
        cmd = Command(name="promote", service=service, env=dep.env, version=running.version)
        try:
            plan, reads = await self.releases.plan(system_actor(), cmd)
        except UserError as exc:
            return _Planned(service, running.version, BoardingState.SKIPPED, str(exc))
        notes = await self.releases.release_notes(plan, reads.running)
        rollback = self.gates.rollback_plan(dep.env, reads.last_healthy)
        checklist = self.gates.evaluate(plan, notes, rollback, reads)
        summary = (
            f"unavailable: {notes['unavailable']}"
            if notes.get("unavailable")
            else ReleaseNotes.from_dict(notes).summary()
        )
        return _Planned(
            service,
            running.version,
            BoardingState.BOARDING,
            None if checklist.passed else view.checklist_failures(checklist),
            checklist.passed,
            summary,
        )

    # --- departure -------------------------------------------------------------------------------------
    async def _depart(self, dep: TrainDeparture, now: datetime) -> int:
        if not still_open(self.windows, dep.env, dep.at, now):
            return await self._missed(dep, DepartureState.BOARDING, now)
        if not await self.db.move_departure(dep.id, frm=DepartureState.BOARDING, to=DepartureState.DEPARTED, now=now):
            return 0
        self._disarm(dep)
        await self.story.audit(system_actor(), "train.departed", f"departure:{dep.id}", env=dep.env)
        await self._carry(dep)
        await self._show_calls(dep.id)
        return 1

    async def _carry(self, dep: TrainDeparture) -> None:
        """Send every service still boarding on a departed departure through the release path."""
        for row in await self.db.boardings(dep.id):
            if row.state != BoardingState.BOARDING or row.version is None:
                continue
            if not await self.db.move_boarding(row.id, frm=BoardingState.BOARDING, to=BoardingState.BOARDED):
                # Taken meanwhile, or this version boarded the environment since the call and its release is on
                # its way or shipped: never twice. (The call skipped a version that had, by the same rule.)
                await self.db.move_boarding(
                    row.id, frm=BoardingState.BOARDING, to=BoardingState.SKIPPED, reason="already boarded"
                )
                continue
            await self._release(dep, row)

    async def _release(self, dep: TrainDeparture, row: Boarding) -> None:
        assert row.version is not None
        channel = self.config.services[row.service].channel
        actor = replace(system_actor(request_id(dep.id, row.service)), channel=channel)
        cmd = Command(name="promote", service=row.service, env=dep.env, version=row.version)
        try:
            result = await self.releases.request_release(actor, cmd)
        except UserError as exc:
            await self._refused(dep, row, str(exc))
            return
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception("train departure %s: %s failed (error id %s)", dep.id, row.service, error_id)
            await self._refused(dep, row, render.crash(error_id).text)
            return
        await self.db.settle_boarding(row.id, state=BoardingState.BOARDED, reason=None, release_id=result.release.id)

    async def _refused(self, dep: TrainDeparture, row: Boarding, reason: str) -> None:
        await self.db.settle_boarding(row.id, state=BoardingState.REFUSED, reason=reason, release_id=None)
        await self._tell(row.service, view.refused(dep, row, reason, self.config.zone))

    async def _missed(self, dep: TrainDeparture, frm: str, now: datetime) -> int:
        if not await self.db.move_departure(dep.id, frm=frm, to=DepartureState.MISSED, now=now, reason=NOT_RUNNING):
            return 0
        self._disarm(dep)
        await self.story.audit(system_actor(), "train.missed", f"departure:{dep.id}", env=dep.env)
        await self._show_calls(dep.id)
        train = self.config.trains[dep.env]
        following = next_running(train.slots(), self.windows, dep.env, max(now, dep.at + _SECOND))
        for service in self._services(dep.env, train):
            await self._tell(service, view.missed(dep, following, self.config.zone))
        return 1

    async def _tell(self, service: str, message: render.Message) -> None:
        channel = self.config.services[service].channel
        try:
            await self.story.notifier.post(channel, message.text, message.blocks)
        except Exception:
            log.exception("could not tell %s about a train departure", channel)

    # --- Hold and Leave off ------------------------------------------------------------------------------
    async def _boarding_departure(self, departure_id: int) -> tuple[TrainDeparture, Train]:
        dep = await self.db.get_departure(departure_id)
        train = self._train(dep.env) if dep is not None else None
        if dep is None or train is None:
            raise UserError(view.unknown_departure())
        return dep, train

    async def may_hold(self, actor: Actor, departure_id: int) -> TrainDeparture:
        """Hold's button: refused (wrong person, not boarding any more) before the reason form opens."""
        dep, train = await self._boarding_departure(departure_id)
        await self._require(Action.TRAIN_HOLD, actor, dep.env, train, view.may_not_hold(dep.env, train.hold))
        if dep.state != DepartureState.BOARDING:
            raise UserError(view.not_boarding(dep, self.config.zone))
        return dep

    async def hold(self, actor: Actor, departure_id: int, reason: str) -> TrainDeparture:
        """Hold a boarding departure with a reason: nothing departs with it."""
        dep, train = await self._boarding_departure(departure_id)
        await self._require(Action.TRAIN_HOLD_REASON, actor, dep.env, train, view.may_not_hold(dep.env, train.hold))
        text = reason.strip()[:300]
        if not text:
            raise UserError(view.hold_needs_reason())
        now = self.story.now()
        if not await self.db.move_departure(
            dep.id, frm=DepartureState.BOARDING, to=DepartureState.HELD, now=now, reason=text, held_by=actor.user
        ):
            found = await self.db.get_departure(dep.id)
            raise UserError(view.not_boarding(found or dep, self.config.zone))
        self._disarm(dep)
        await self.story.audit(actor, "train.held", f"departure:{dep.id}", env=dep.env, reason=text)
        await self._show_calls(dep.id)
        for row in await self.db.boardings(dep.id):
            await self.story.changed(row.service)
        await self.plan_departures()
        return dep

    async def leave_off(self, actor: Actor, boarding_id: int) -> tuple[TrainDeparture, Boarding]:
        """Take one service off a boarding departure."""
        row = await self.db.get_boarding(boarding_id)
        if row is None:
            raise UserError(view.unknown_departure())
        dep, train = await self._boarding_departure(row.departure_id)
        await self._require(Action.TRAIN_LEAVE_OFF, actor, dep.env, train, view.may_not_leave_off(dep.env, train.hold))
        if dep.state != DepartureState.BOARDING:
            raise UserError(view.not_boarding(dep, self.config.zone))
        if not await self.db.move_boarding(
            row.id, frm=BoardingState.BOARDING, to=BoardingState.LEFT_OFF, by=actor.user, reason="left off"
        ):
            found = await self.db.get_boarding(row.id)
            raise UserError(view.not_aboard(found or row))
        await self.story.audit(actor, "train.left_off", f"departure:{dep.id}", service=row.service)
        await self._show_calls(dep.id, row.service)
        await self.story.changed(row.service)
        return dep, row

    async def _require(self, action: Action, actor: Actor, env: str, train: Train, words: str) -> None:
        """The permission table, with the train's ``hold`` groups as its train holders."""
        try:
            await self.gate.require(action, actor.user, env, Context(holders=list(train.hold)))
        except NotPermitted:
            raise NotPermitted(words) from None

    # --- where people look -------------------------------------------------------------------------------
    async def outlook(self, service: str | None = None) -> list[TrainOutlook]:
        """Every train (carrying ``service``, or all): next departures, which run, and what would board."""
        now = self.story.now()
        found = []
        for env, train in self.config.trains.items():
            if service is not None and service not in self._services(env, train):
                continue
            slots = train.slots()
            ahead = upcoming(slots, self.windows, env, now, SHOWN)
            following = next((d.at for d in ahead if d.runs), None) or next_running(slots, self.windows, env, now)
            current = next(
                iter(await self.db.departures_in([DepartureState.PENDING, DepartureState.BOARDING], env)), None
            )
            rows = tuple(await self.db.boardings(current.id)) if current is not None else ()
            found.append(
                TrainOutlook(env, tuple(ahead), following, tuple(await self._aboard(env, train)), current, rows)
            )
        return found

    # --- restarts --------------------------------------------------------------------------------------
    async def recover(self) -> None:
        """On start: settle boarded rows a crash left without a release, finish a departure a crash cut short
        (while its window is open), cancel departures the config no longer has, post boarding calls a crash
        kept from going out, take what is now due (or missed), and plan and arm the rest."""
        now = self.story.now()
        await self._settle_departed(now)
        await self._cancel_stale(now)
        await self._post_missing_calls()
        await self.run_due()

    async def _cancel_stale(self, now: datetime) -> None:
        """A pending departure whose instant is no longer a slot of its train (``departs`` or the timezone
        changed), or any open departure of a train removed from the config, is cancelled; the train's next
        departure is then planned from the config as it is. A boarding departure of a train still configured
        keeps its promise: its boarding call named it, so it departs as announced."""
        for dep in await self.db.departures_in([DepartureState.PENDING, DepartureState.BOARDING]):
            train = self._train(dep.env)
            if train is None:
                reason = REMOVED
            elif dep.state == DepartureState.PENDING and not is_slot(train.slots(), dep.at, self.config.zone):
                reason = RETIMED
            else:
                continue
            if not await self.db.move_departure(
                dep.id, frm=dep.state, to=DepartureState.CANCELLED, now=now, reason=reason
            ):
                continue
            self._disarm(dep)
            await self.story.audit(system_actor(), "train.cancelled", f"departure:{dep.id}", env=dep.env, reason=reason)
            await self._show_calls(dep.id)
            if train is not None:  # from now: the slots in between belonged to no timetable, none was missed
                at = next(departures(train.slots(), now, self.config.zone), None)
                if at is not None:
                    await self.db.add_departure(env=dep.env, at=at, boards_at=boards_at(at, train.notice), now=now)

    async def _post_missing_calls(self) -> None:
        """Boarding calls a crash (between the boarding claim and the post) kept from going out, posted once:
        the row remembers its message, so a second start finds it posted."""
        for dep in await self.db.departures_in([DepartureState.BOARDING]):
            if dep.env not in self.config.trains:
                continue
            for row in await self.db.boardings(dep.id):
                if row.message_ts is None:
                    await self._post_call(dep, row)

    async def _settle_departed(self, now: datetime) -> None:
        for dep in await self.db.unsettled_departures():  # not every departure of the history: only these
            rows = await self.db.boardings(dep.id)
            for row in rows:
                if row.state == BoardingState.BOARDED and row.release_id is None:
                    release_id = await self.db.release_of_request(request_id(dep.id, row.service))
                    if release_id is not None:
                        await self.db.settle_boarding(
                            row.id, state=BoardingState.BOARDED, reason=None, release_id=release_id
                        )
                    else:
                        await self._refused(dep, row, view.STOPPED_WHILE_DEPARTING)
            if any(row.state == BoardingState.BOARDING for row in rows):
                if still_open(self.windows, dep.env, dep.at, now):
                    await self._carry(dep)
                else:
                    for row in rows:
                        if row.state == BoardingState.BOARDING:
                            await self.db.move_boarding(
                                row.id, frm=BoardingState.BOARDING, to=BoardingState.REFUSED, reason=view.MISSED_ROW
                            )
            if any(_unsettled(row) for row in rows):  # this start settled them: their calls say how
                await self._show_calls(dep.id)
