"""The SQLite store: candidates, releases, locks, approvals, audit. Synchronous; see AsyncStore."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from bot.store.approvals import ApprovalStore, VoteResult
from bot.store.candidates import CandidateStore
from bot.store.db import Runner, Sql
from bot.store.records import RecordStore
from bot.store.releases import LockHeld, ReleaseStore

P = ParamSpec("P")
T = TypeVar("T")

__all__ = ["AsyncStore", "LockHeld", "Store", "VoteResult"]


class Store(CandidateStore, ReleaseStore, ApprovalStore, RecordStore):
    """All persistent state. Methods are synchronous and fast; call them through AsyncStore.run."""

    def __init__(self, path: Path | str) -> None:
        self.sql = Sql(path)

    def close(self) -> None:
        self.sql.close()


class AsyncStore:
    """The store as the event loop uses it: every call runs on the store's own thread."""

    def __init__(self, store: Store) -> None:
        self.sync = store
        self._runner = Runner()

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` run on the store thread, e.g. ``run(db.sync.history, "notify")``."""
        return await self._runner.run(fn, *args, **kwargs)

    def close(self) -> None:
        self._runner.shutdown()
        self.sync.close()
