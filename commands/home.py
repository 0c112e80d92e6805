"""App Home: per service what runs where, locks, windows, approvals you can act on, freezes ahead.

The Home tab of everyone who opened it recently is re-published when something it shows changes (the
engine's ``on_change`` listeners): the users are remembered in memory, most recent first and bounded,
and bursts of changes coalesce into one refresh running in the background.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from bot.core.models import Approval
from bot.engine import Engine
from bot.views.admin import home_rows
from bot.views.home import ServiceRow, home_view
from bot.views.trains import home_lines
from bot.views.windows import closed_ahead_lines

log = logging.getLogger("release_bot.home")
MAX_VIEWERS = 500  # remembered Home viewers; the least recent one is forgotten beyond this


@dataclass(frozen=True)
class HomeSnapshot:
    """Everything on the Home tab that is the same for every user."""

    services: list[ServiceRow]
    pending: list[Approval]
    freezes: list[str]
    trains: list[str] = field(default_factory=list)  # the next departures and what would board


async def snapshot(engine: Engine) -> HomeSnapshot:
    """Read the shared part of the Home tab: a handful of queries, whatever the number of services."""
    now = engine.now()  # one instant for the windows now and the closures ahead
    services = home_rows(await engine.admin.all_statuses(now), engine.config.zone)
    pending = await engine.db.pending_approvals(None)
    freezes = closed_ahead_lines(await engine.summaries.closed_ahead(now))
    trains = home_lines(await engine.trains.outlook(), engine.config.zone) if engine.config.trains else []
    return HomeSnapshot(services, pending, freezes, trains)


async def actionable(engine: Engine, pending: list[Approval], user: str) -> list[Approval]:
    """The pending approvals ``user`` may decide: not their own, not voted on yet, and they are eligible."""
    found = []
    for approval in pending:
        if approval.requester == user or user in approval.approvers:
            continue
        if not approval.eligible_groups or await engine.gate.in_groups(user, approval.eligible_groups):
            found.append(approval)
    return found


async def home_for(engine: Engine, user: str, shared: HomeSnapshot | None = None) -> dict[str, Any]:
    """Build the Home view for ``user`` (from ``shared`` when one refresh serves many users)."""
    shared = shared or await snapshot(engine)
    approvals = await actionable(engine, shared.pending, user)
    return home_view(shared.services, approvals, shared.freezes, engine.config.zone, shared.trains)


class HomeViewers:
    """Users whose Home tab is kept current. An instance is itself the engine's change listener (called
    with the service after each change), so :func:`home_viewers` finds it again among the listeners."""

    def __init__(self, engine: Engine, limit: int = MAX_VIEWERS) -> None:
        self.engine = engine
        self.limit = limit
        self._users: OrderedDict[str, None] = OrderedDict()
        self._dirty = False
        self._refreshing: asyncio.Task[None] | None = None

    @property
    def users(self) -> list[str]:
        """Remembered users, least recently seen first."""
        return list(self._users)

    def seen(self, user: str) -> None:
        self._users[user] = None
        self._users.move_to_end(user)
        while len(self._users) > self.limit:
            self._users.popitem(last=False)

    async def __call__(self, service: str) -> None:
        """Schedule a refresh; changes arriving while one runs fold into a single further pass."""
        if not self._users:
            return
        self._dirty = True
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = self.engine.spawn(self._refresh(), "home.refresh")

    async def _refresh(self) -> None:
        while self._dirty:
            self._dirty = False
            shared = await snapshot(self.engine)
            for user in self.users:
                try:
                    view = await home_for(self.engine, user, shared)
                    await self.engine.deps.notifier.publish_home(user, view)
                except Exception:
                    # A user Slack no longer knows (deactivated, app removed) stops being refreshed.
                    log.warning("could not refresh the Home of %s; forgetting it", user, exc_info=True)
                    self._users.pop(user, None)


def home_viewers(engine: Engine) -> HomeViewers:
    """The engine's HomeViewers, registered as its change listener on first use."""
    for listener in engine.on_change:
        if isinstance(listener, HomeViewers):
            return listener
    viewers = HomeViewers(engine)
    engine.on_change.append(viewers)
    return viewers


async def publish_home(engine: Engine, user: str, *, remember: bool = True) -> None:
    """Publish ``user``'s Home tab; with ``remember`` it is re-published whenever what it shows changes."""
    if remember:
        home_viewers(engine).seen(user)
    await engine.deps.notifier.publish_home(user, await home_for(engine, user))
