"""The SQLite store: candidates, releases, locks, approvals, audit. Synchronous; the event loop uses it
through AsyncStore (bot/store/async_store.py), one typed coroutine per method."""

from __future__ import annotations

from pathlib import Path

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
from bot.store.reports import ReportStore, StatusRows
from bot.store.scheduled import ScheduledStore
from bot.store.trains import TrainStore

__all__ = ["AsyncStore", "LockHeld", "StatusRows", "Store", "StoreWriteError", "VoteResult"]


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
        # Each service's last status rows, with the status generation they were read at (status_snapshot).
        self._statuses: dict[str, tuple[int, StatusRows]] = {}

    def status_snapshot(self, service: str) -> StatusRows:
        """Everything `/release status` shows for a service: its environments' states, locks and ad-hoc freezes.

        Kept from the last read while the status generation stands (migration 0018: triggers count every change to
        those tables, from any connection or process), so a repeated status costs one single-row read. The
        generation is read before the rows: a change committed in between leaves newer rows under an older count,
        which the next read replaces, never older rows under a newer one.
        """
        row = self.sql.one("SELECT n FROM status_generation WHERE id = 1")
        generation = int(row["n"]) if row else -1
        kept = self._statuses.get(service)
        if kept is not None and kept[0] == generation:
            return kept[1]
        rows = StatusRows(
            tuple(self.env_states(service)),
            tuple(self.all_locks(service)),
            tuple(self.adhoc_freezes(service).get(service, [])),
        )
        self._statuses[service] = (generation, rows)
        return rows

    def close(self) -> None:
        self.sql.close()
