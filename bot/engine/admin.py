"""Read-only answers and environment administration: status, window, history, manifest, notes, locks, freezes.

Each answer is plain data that bot.views.admin renders; a refusal that quotes outside text (a version
someone typed, a lock's reason, a source's error) takes its words from there too, escaped.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import Config
from bot.core.models import EnvState, Lock
from bot.core.notes import ReleaseNotes, build_release_notes
from bot.core.windows import WindowDecision, adhoc_until
from bot.engine.base import Actor
from bot.engine.errors import UserError
from bot.engine.gatekeeper import Context, Gatekeeper
from bot.engine.gates import Gates
from bot.engine.story import Story
from bot.policy.permissions import Action
from bot.ports import Directory, SourceLookup
from bot.sources.base import SourceError
from bot.views.admin import (
    CandidateManifest,
    EnvManifest,
    EnvStatus,
    Frozen,
    History,
    Locked,
    NotesAnswer,
    RunningManifest,
    Status,
    Unfrozen,
    Unlocked,
    Windows,
    already_locked,
    no_stored_notes,
    notes_unavailable,
    unknown_candidate,
)


class Admin:
    """What each environment runs and may run, and its administration: locks and freezes."""

    def __init__(
        self,
        *,
        config: Config,
        story: Story,
        gate: Gatekeeper,
        gates: Gates,
        sources: SourceLookup,
        directory: Directory,
    ) -> None:
        self.config = config
        self.db = story.db
        self.story = story
        self.gate = gate
        self.gates = gates
        self.windows = gates.windows
        self.sources = sources
        self.directory = directory

    async def status(self, service: str) -> Status:
        """Each environment: what runs, since when, by whom, locks, and the window — one store trip."""
        state_rows, locks, freezes = await self.db.status_snapshot(service)
        states = {s.env: s for s in state_rows}
        now = self.story.now()
        envs = tuple(
            EnvStatus(
                env=env,
                running=states.get(env),
                window=self.windows.decide(env, now, freezes),
                locks=tuple(lock for lock in locks if lock.env == env),
            )
            for env in self.config.services[service].pipeline
        )
        return Status(service, envs)

    async def all_statuses(self, now: datetime) -> tuple[Status, ...]:
        """Every service's status at ``now``, for App Home: three queries, whatever the number of services."""
        states: dict[tuple[str, str], EnvState] = {(s.service, s.env): s for s in await self.db.all_env_states()}
        locks: dict[tuple[str, str], list[Lock]] = defaultdict(list)
        for lock in await self.db.all_locks():
            locks[(lock.service, lock.env)].append(lock)
        adhoc = await self.db.adhoc_freezes(None)
        shared: dict[str, WindowDecision] = {}  # env -> decision for services without ad-hoc freezes there
        statuses = []
        for name, svc in self.config.services.items():
            envs = []
            for env in svc.pipeline:
                mine = [f for f in adhoc.get(name, []) if f.environment == env]
                if mine:
                    decision = self.windows.decide(env, now, mine)
                else:
                    if env not in shared:
                        shared[env] = self.windows.decide(env, now)
                    decision = shared[env]
                envs.append(EnvStatus(env, states.get((name, env)), decision, tuple(locks.get((name, env), ()))))
            statuses.append(Status(name, tuple(envs)))
        return tuple(statuses)

    async def window(self, actor: Actor, service: str, env: str | None) -> Windows:
        """The window of ``env`` (or of each environment), with ``actor``'s own zone when it differs."""
        envs = [env] if env else self.config.services[service].pipeline
        user_zone = await self._user_zone(actor.user)
        freezes, now = await self.gates.adhoc_freezes(service), self.story.now()
        return Windows(tuple(self.windows.decide(e, now, freezes) for e in envs), user_zone)

    async def _user_zone(self, user: str) -> ZoneInfo | None:
        try:
            name = await self.directory.user_timezone(user)
            zone = ZoneInfo(name) if name else None
        except (ZoneInfoNotFoundError, ValueError):
            return None
        except Exception:
            return None
        return None if zone is None or zone.key == self.config.zone.key else zone

    async def history(self, service: str, env: str | None, count: int | None) -> History:
        return History(service, env, tuple(await self.db.history(service, env, count or 10)))

    async def manifest(self, service: str, env: str | None, version: str | None) -> CandidateManifest | RunningManifest:
        """What candidate ``version`` is made of; without one, what runs in ``env`` (or in each environment)."""
        if version is not None:
            candidate = await self.db.get_candidate(service, version)
            if candidate is None:
                raise UserError(unknown_candidate(service, version))
            return CandidateManifest(service, candidate)
        envs = []
        for e in [env] if env else self.config.services[service].pipeline:
            state = await self.db.env_state(service, e)
            candidate = await self.db.get_candidate(service, state.version) if state else None
            envs.append(EnvManifest(e, state, candidate))
        return RunningManifest(service, tuple(envs))

    async def notes(self, service: str, version: str | None, range_from: str | None) -> NotesAnswer:
        if version is None:
            latest = await self.db.history(service, None, 1)
            if not latest:
                raise UserError(f"no releases of {service} yet.")
            version = latest[0].version
        if range_from is not None:
            source = self.sources(service)
            start = await self.db.get_candidate(service, range_from)
            end = await self.db.get_candidate(service, version)
            if source is None or start is None or end is None:
                raise UserError("both ends of the range must be known candidates of a service with a repository.")
            try:
                commits = await source.commits_between(start.commit, end.commit)
            except SourceError as exc:
                raise UserError(notes_unavailable(exc.reason)) from None
            # Grouping thousands of commits takes ~100 ms: keep it off the event loop.
            notes = await asyncio.to_thread(build_release_notes, commits, pr_url_base=source.pr_url_base)
        else:
            found = await self.db.release_with_notes(service, version)
            if found is None or found.notes is None:
                raise UserError(no_stored_notes(version))
            notes = ReleaseNotes.from_dict(found.notes)
        return NotesAnswer(service, version, notes)

    async def lock(self, actor: Actor, service: str, env: str, reason: str) -> Locked:
        await self.gate.require(Action.LOCK, actor.user, env)
        existing = await self.db.set_manual_lock(service, env, actor.user, reason, self.story.now())
        if existing is not None:
            raise UserError(already_locked(existing))
        await self.story.audit(actor, "env.locked", f"{service}/{env}", reason=reason)
        await self.story.changed(service)
        return Locked(service, env, actor.user, reason)

    async def unlock(self, actor: Actor, service: str, env: str) -> Unlocked:
        existing = await self.db.manual_lock(service, env)
        if existing is None:
            raise UserError(f"{env} is not locked.")
        await self.gate.require(Action.UNLOCK, actor.user, env, Context(lock_holder=existing.holder))
        await self.db.clear_manual_lock(service, env)
        await self.story.audit(actor, "env.unlocked", f"{service}/{env}", was=existing.reason)
        await self.story.changed(service)
        return Unlocked(service, env)

    async def freeze(self, actor: Actor, service: str, env: str, until: date, reason: str) -> Frozen:
        await self.gate.require(Action.FREEZE, actor.user, env)
        if until < self.story.now().astimezone(self.config.zone).date():
            raise UserError("that date has passed; a freeze must end today or later.")
        end = adhoc_until(until, self.config.zone)
        await self.db.set_freeze(service, env, end, reason, actor.user, self.story.now())
        await self.story.audit(actor, "env.frozen", f"{service}/{env}", until=until.isoformat(), reason=reason)
        await self.story.changed(service)
        return Frozen(service, env, until, reason)

    async def unfreeze(self, actor: Actor, service: str, env: str) -> Unfrozen:
        freeze = next((f for f in await self.gates.adhoc_freezes(service) if f.environment == env), None)
        if freeze is None:
            raise UserError(f"{env} has no ad-hoc freeze.")
        await self.gate.require(Action.UNFREEZE, actor.user, env, Context(freezer=freeze.by))
        if not await self.db.clear_freeze(service, env):
            raise UserError(f"{env} has no ad-hoc freeze.")
        await self.story.audit(actor, "env.unfrozen", f"{service}/{env}")
        await self.story.changed(service)
        return Unfrozen(service, env)
