"""The SQLite store: candidates, releases, locks, approvals, audit. Synchronous; the event loop uses it
through AsyncStore (bot/store/async_store.py), one typed coroutine per method."""

from __future__ import annotations

from pathlib import Path

from bot.core.models import EnvState, Lock
from bot.core.windows import AdhocFreeze
from bot.store.alerts import AlertStore
from bot.store.approvals import ApprovalStore, VoteResult
from bot.store.async_store import AsyncStore
from bot.store.candidates import CandidateStore
from bot.store.db import Sql, StoreWriteError
from bot.store.deploy_runs import DeployRunStore
from bot.store.events import EventStore
from bot.store.outbox import OutboxStore
from bot.store.records import RecordStore
from bot.store.releases import LockHeld, ReleaseStore
from bot.store.replays import ReplayStore
from bot.store.reports import ReportStore
from bot.store.scheduled import ScheduledStore
from bot.store.trains import TrainStore

__all__ = ["AsyncStore", "LockHeld", "Store", "StoreWriteError", "VoteResult"]


class Store(
    CandidateStore,
    ReleaseStore,
    ApprovalStore,
    RecordStore,
    OutboxStore,
    ReportStore,
    ReplayStore,
    DeployRunStore,
    ScheduledStore,
    AlertStore,
    EventStore,
    TrainStore,
):
    """All persistent state. Methods are synchronous and fast; the event loop calls them through AsyncStore."""

    def __init__(self, path: Path | str, *, read_only: bool = False, nowait: bool = False) -> None:
        self.path = path
        self.sql = Sql(path, read_only=read_only, nowait=nowait)

    def status_snapshot(self, service: str) -> tuple[list[EnvState], list[Lock], list[AdhocFreeze]]:
        """Everything `/release status` shows for a service, read in one trip to the store."""
        return self.env_states(service), self.all_locks(service), self.adhoc_freezes(service).get(service, [])

    def close(self) -> None:
        self.sql.close()
