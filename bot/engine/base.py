"""Shared engine plumbing: dependencies, the clock, audit, the release story, background tasks."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.config import Config
from bot.core.checklist import ChecklistResult, checklist_lines
from bot.core.models import Release, ReleaseState
from bot.core.notes import ReleaseNotes
from bot.core.windows import WindowPolicy
from bot.engine.errors import UserError
from bot.engine.gatekeeper import Gatekeeper
from bot.metrics.run import CheckRunner
from bot.observability import BACKGROUND_TASKS, release_finished
from bot.ports import Clock, Directory, Notifier
from bot.providers.base import DeployProvider
from bot.slack import render
from bot.sources.base import CommitSource
from bot.store import AsyncStore

log = logging.getLogger("release_bot.engine")


class Scheduler(Protocol):
    """Runs a coroutine function at an instant (APScheduler in production)."""

    def at(self, when: datetime, key: str, job: Callable[[], Awaitable[None]]) -> None:
        """Schedule ``job`` at ``when``, replacing any job with the same ``key``."""
        ...

    def cancel(self, key: str) -> None:
        """Forget the job with ``key`` if it is still waiting."""
        ...


Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Actor:
    """Who asked, from where, through which Slack request (for the audit trail)."""

    user: str
    channel: str | None = None
    request_id: str | None = None
    system: bool = False  # the bot acting on its own (auto-rollback, resuming after a crash): a role, not a name


SYSTEM_USER = "release-bot"  # how the bot's own actions appear in the audit trail and release events


def system_actor(request_id: str | None = None) -> Actor:
    """The bot itself, as an actor: permissions see ``system``, the audit trail its name."""
    return Actor(user=SYSTEM_USER, request_id=request_id, system=True)


@dataclass(frozen=True)
class Reply:
    """What the user who asked sees: ephemeral unless ``public``."""

    message: render.Message
    public: bool = False


@dataclass
class Deps:
    """Everything the engine talks to. Tests swap any of these for real local stand-ins."""

    config: Config
    db: AsyncStore
    notifier: Notifier
    directory: Directory
    clock: Clock
    providers: Callable[[str], DeployProvider]  # environment name -> its provider
    sources: Callable[[str], CommitSource | None] = lambda service: None
    checks: CheckRunner | None = None  # post-release metric checks; None: checks are skipped
    scheduler: Scheduler | None = None  # timed work (checks, summaries); None: run on demand only
    sleep: Sleep = asyncio.sleep
    group_cache_ttl: timedelta = timedelta(minutes=5)
    base_url: str | None = None  # RELEASEBOT_PUBLIC_URL: where the bot's web pages are reachable
    notes_link_key: bytes | None = None  # signs links to the full notes page; None: no link is posted


class EngineBase:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.config = deps.config
        self.db = deps.db
        self.windows = WindowPolicy(deps.config)
        self._tasks: set[asyncio.Task[None]] = set()
        self.gate = Gatekeeper(deps.config, deps.directory, deps.clock, deps.group_cache_ttl)
        self.on_change: list[Callable[[str], Awaitable[None]]] = []  # App Home refreshers, per service
        self.closers: list[Callable[[], Awaitable[None]]] = []  # edges to close at shutdown (HTTP sessions)
        # Check wake-ups can fire by the hundred at once: one sweep runs at a time, and a wake-up that
        # arrives meanwhile asks for one more sweep instead of starting its own.
        self._sweep_lock = asyncio.Lock()
        self._sweep_again = False
        self._measure_slots = asyncio.Semaphore(8)  # measurements in flight at once (backends are remote)

    # --- time, audit ------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.deps.clock.now()

    async def audit(self, actor: Actor | str, action: str, subject: str, **detail: Any) -> None:
        who = actor if isinstance(actor, str) else actor.user
        request_id = None if isinstance(actor, str) else actor.request_id
        await self.db.run(
            self.db.sync.audit,
            actor=who,
            action=action,
            subject=subject,
            now=self.now(),
            detail=detail,
            request_id=request_id,
        )

    # --- background work ----------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, object], name: str) -> asyncio.Task[None]:
        """Run work after the ack. Failures are logged with an id, never lost silently."""
        task = asyncio.get_running_loop().create_task(self._guard(coro, name), name=name)
        self._tasks.add(task)
        BACKGROUND_TASKS.inc()
        task.add_done_callback(self._done)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, object], name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s failed (error id %s)", name, uuid.uuid4().hex[:8])

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        BACKGROUND_TASKS.dec()

    async def drain(self) -> None:
        """Await every background task, including ones they start (tests await this, never sleep)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for closer in self.closers:
            await closer()

    async def changed(self, service: str) -> None:
        for callback in self.on_change:
            try:
                await callback(service)
            except Exception:
                log.exception("change listener failed")

    # --- the release story -------------------------------------------------------------------------
    def parent_message(self, release: Release) -> render.Message:
        lines: list[str] = []
        if release.checklist:
            lines = checklist_lines(ChecklistResult.from_dict(release.checklist))
        notes_line = None
        if release.notes:
            if release.notes.get("unavailable"):
                notes_line = f"*Release notes:* unavailable: {release.notes['unavailable']}"
            else:
                notes = ReleaseNotes.from_dict(release.notes)
                notes_line = f"*Release notes:* {notes.summary()} (in the thread)"
        return render.release_parent(release, self.config.zone, checklist_lines=lines, notes_line=notes_line)

    async def post_parent(self, release: Release) -> Release:
        channel = self.config.services[release.service].channel
        message = self.parent_message(release)
        try:
            ts = await self.deps.notifier.post(channel, message.text, message.blocks)
        except Exception:
            log.exception("could not post the parent message of release %s", release.id)
            return release
        await self.db.run(self.db.sync.update_release, release.id, channel=channel, thread_ts=ts)
        found = await self.db.run(self.db.sync.get_release, release.id)
        return found or release

    async def refresh_parent(self, release_id: int) -> None:
        release = await self.db.run(self.db.sync.get_release, release_id)
        if release is None or release.channel is None or release.thread_ts is None:
            return
        message = self.parent_message(release)
        try:
            await self.deps.notifier.update(release.channel, release.thread_ts, message.text, message.blocks)
        except Exception:
            log.exception("could not update the parent message of release %s", release_id)

    async def reply(self, release_id: int, message: render.Message) -> str | None:
        """Post ``message`` in the release's thread; its ts, or None when it could not be posted."""
        release = await self.db.run(self.db.sync.get_release, release_id)
        if release is None or release.channel is None:
            return None
        try:
            return await self.deps.notifier.post(
                release.channel, message.text, message.blocks, thread_ts=release.thread_ts
            )
        except Exception:
            log.exception("could not reply in the thread of release %s", release_id)
            return None

    # --- state changes ------------------------------------------------------------------------------
    async def move(
        self,
        release_id: int,
        env: str,
        to: ReleaseState,
        *,
        actor: str,
        detail: str,
        only_from: set[ReleaseState],
        **fields: Any,
    ) -> bool:
        """Move a release to ``to`` if it is in ``only_from``; a final state reached is counted in /metrics."""
        moved = await self.db.run(
            self.db.sync.transition,
            release_id,
            to,
            actor=actor,
            detail=detail,
            now=self.now(),
            only_from=only_from,
            **fields,
        )
        if moved and to.terminal:
            release_finished(env, to.value)
        return moved

    async def once(self, key: str, taken: str, effect: Callable[[], Awaitable[Reply]]) -> Reply:
        """A button's effect at most once however often it is clicked (``taken``: what a second click is told).

        A refusal gives the claim back: nothing happened, so the button must work again later.
        """
        if not await self.db.run(self.db.sync.claim, key, self.now()):
            raise UserError(taken)
        try:
            return await effect()
        except UserError:
            await self.db.run(self.db.sync.unclaim, key)
            raise
