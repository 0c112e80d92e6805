"""What every service shares: background tasks, and the release story (its record, thread and parent message)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

from bot.config import Config
from bot.core.models import Release, ReleaseState
from bot.engine.base import Actor, Reply
from bot.engine.errors import UserError
from bot.observability import BACKGROUND_TASKS, release_finished
from bot.ports import Clock, Notifier
from bot.store import AsyncStore, Store
from bot.views import render
from bot.views.parent import parent_message

log = logging.getLogger("release_bot.engine")


class Tasks:
    """Work that runs after the ack. Failures are logged with an id, never lost silently."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, object], name: str) -> asyncio.Task[None]:
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

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)


class Story:
    """A release's record and its telling: state changes, the audit trail, the parent message and the thread.

    Every service changes a release through :meth:`move` (counted in /metrics when final) and tells its
    thread through :meth:`reply`; App Home listeners hear of each change through :meth:`changed`.
    """

    def __init__(self, config: Config, db: AsyncStore, notifier: Notifier, clock: Clock) -> None:
        self.config = config
        self.db = db
        self.notifier = notifier
        self.clock = clock
        self.on_change: list[Callable[[str], Awaitable[None]]] = []  # App Home refreshers, per service

    def now(self) -> datetime:
        return self.clock.now()

    async def audit(self, actor: Actor, action: str, subject: str, **detail: Any) -> None:
        await self.db.audit(
            actor=actor.user,
            action=action,
            subject=subject,
            now=self.now(),
            detail=detail,
            request_id=actor.request_id,
        )

    async def changed(self, service: str) -> None:
        for callback in self.on_change:
            try:
                await callback(service)
            except Exception:
                log.exception("change listener failed")

    async def post_parent(self, release: Release) -> Release:
        """Post the release's parent message in its service's channel; the release with its thread."""
        channel = self.config.services[release.service].channel
        message = parent_message(release, self.config.zone)
        try:
            ts = await self.notifier.post(channel, message.text, message.blocks)
        except Exception:
            log.exception("could not post the parent message of release %s", release.id)
            return release
        return await self.db.update_release(release.id, channel=channel, thread_ts=ts)

    async def _row(self, release: Release | int) -> Release | None:
        """The row the caller holds, or (given only an id) the row as stored."""
        return release if isinstance(release, Release) else await self.db.get_release(release)

    async def refresh_parent(self, release: Release | int) -> None:
        """Show ``release`` (pass the row as it is now, or its id to read it) in its parent message."""
        found = await self._row(release)
        if found is None or found.channel is None or found.thread_ts is None:
            return
        message = parent_message(found, self.config.zone)
        try:
            await self.notifier.update(found.channel, found.thread_ts, message.text, message.blocks)
        except Exception:
            log.exception("could not update the parent message of release %s", found.id)

    async def reply(self, release: Release | int, message: render.Message) -> str | None:
        """Post ``message`` in the release's thread; its ts, or None when it could not be posted."""
        found = await self._row(release)
        if found is None or found.channel is None:
            return None
        try:
            return await self.notifier.post(found.channel, message.text, message.blocks, thread_ts=found.thread_ts)
        except Exception:
            log.exception("could not reply in the thread of release %s", found.id)
            return None

    async def move(
        self,
        release_id: int,
        env: str,
        to: ReleaseState,
        *,
        actor: Actor,
        detail: str,
        only_from: set[ReleaseState],
        audit: str | None = None,
        audit_detail: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Release | None:
        """Move a release to ``to`` if it is in ``only_from``: the release as it now is, or None (not moved).

        With ``audit``, the audit entry (``release:<id>``, ``audit_detail``) is written in the same round trip
        and transaction. A final state reached is counted in /metrics.
        """
        now = self.now()
        moved = await self.db.unit(
            lambda store: change(store, release_id, to, actor, detail, only_from, now, audit, audit_detail, fields)
        )
        if moved is not None and to.terminal:
            release_finished(env, to.value)
        return moved

        moved = await self.db.unit(change)
        if moved is not None and to.terminal:
            release_finished(env, to.value)
        return moved

    async def once(self, key: str, taken: str, effect: Callable[[], Awaitable[Reply]]) -> Reply:
        """A button's effect at most once however often it is clicked (``taken``: what a second click is told).

        A refusal gives the claim back: nothing happened, so the button must work again later.
        """
        if not await self.db.claim(key, self.now()):
            raise UserError(taken)
        try:
            return await effect()
        except UserError:
            await self.db.unclaim(key)
            raise


def change(
    store: Store,
    release_id: int,
    to: ReleaseState,
    actor: Actor,
    detail: str,
    only_from: set[ReleaseState],
    now: datetime,
    audit: str | None = None,
    audit_detail: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
) -> Release | None:
    """On the store thread (inside a unit): the state change and its audit entry, as :meth:`Story.move` makes
    them, for a unit that changes more in the same transaction. Not counted in /metrics: a caller moving to a
    final state uses :meth:`Story.move`."""
    moved = store.transition(
        release_id, to, actor=actor.user, detail=detail, now=now, only_from=only_from, **(fields or {})
    )
    if moved is not None and audit is not None:
        store.audit(
            actor=actor.user,
            action=audit,
            subject=f"release:{release_id}",
            now=now,
            detail=audit_detail,
            request_id=actor.request_id,
        )
    return moved
