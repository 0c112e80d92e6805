"""Scheduled releases: one row each, pending until one wake-up claims it (bot/engine/schedules.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.core.scheduling import Scheduled, ScheduledState
from bot.store import rows
from bot.store.db import Sql


def _scheduled(row: Any) -> Scheduled:
    return Scheduled(
        id=row["id"],
        service=row["service"],
        env=row["env"],
        version=row["version"],
        source_env=row["source_env"],
        command=row["command"],
        requested_by=row["requested_by"],
        at=rows.need_dt(row["at"]),
        state=row["state"],
        created_at=rows.need_dt(row["created_at"]),
        reason=row["reason"],
        release_id=row["release_id"],
    )


class ScheduledStore:
    sql: Sql

    def add_scheduled(
        self,
        *,
        service: str,
        env: str,
        version: str | None,
        source_env: str | None,
        command: str,
        requested_by: str,
        at: datetime,
        now: datetime,
    ) -> Scheduled:
        """Store a pending scheduled release; the row."""
        cursor = self.sql.execute(
            "INSERT INTO scheduled_releases (service, env, version, source_env, command, requested_by, at, state, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                service,
                env,
                version,
                source_env,
                command,
                requested_by,
                rows.ts(at),
                ScheduledState.PENDING,
                rows.ts(now),
            ),
        )
        found = self.get_scheduled(int(cursor.lastrowid or 0))
        assert found is not None
        return found

    def get_scheduled(self, scheduled_id: int) -> Scheduled | None:
        row = self.sql.one("SELECT * FROM scheduled_releases WHERE id = ?", (scheduled_id,))
        return None if row is None else _scheduled(row)

    def scheduled_in(self, states: list[str], service: str | None = None) -> list[Scheduled]:
        """The scheduled releases in ``states`` (of ``service``, or all), soonest first."""
        marks = ", ".join("?" for _ in states)
        sql = f"SELECT * FROM scheduled_releases WHERE state IN ({marks})"  # noqa: S608 - placeholders only
        params: list[Any] = list(states)
        if service is not None:
            sql += " AND service = ?"
            params.append(service)
        return [_scheduled(row) for row in self.sql.query(sql + " ORDER BY at, id", tuple(params))]

    def claim_scheduled(self, scheduled_id: int, *, to: str, reason: str | None = None) -> bool:
        """Move a pending row to ``to`` (starting, cancelled, missed) — True only for the one caller that did."""
        return bool(
            self.sql.execute(
                "UPDATE scheduled_releases SET state = ?, reason = ? WHERE id = ? AND state = ?",
                (to, reason, scheduled_id, ScheduledState.PENDING),
            ).rowcount
        )

    def settle_scheduled(self, scheduled_id: int, *, state: str, reason: str | None, release_id: int | None) -> None:
        """A claimed (starting) row's outcome: done with its release, or refused with the reason."""
        self.sql.execute(
            "UPDATE scheduled_releases SET state = ?, reason = ?, release_id = ? WHERE id = ? AND state = ?",
            (state, reason, release_id, scheduled_id, ScheduledState.STARTING),
        )

    def release_of_request(self, request_id: str) -> int | None:
        """The release a request created (its `release.requested` audit entry), if it got that far."""
        row = self.sql.one(
            "SELECT subject FROM audit WHERE request_id = ? AND action = 'release.requested' ORDER BY id LIMIT 1",
            (request_id,),
        )
        if row is None:
            return None
        return int(str(row["subject"]).removeprefix("release:"))
