"""Ad-hoc freezes, the append-only audit trail, idempotency keys and scheduled measurements."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from bot.core.models import AuditEntry
from bot.core.watch import Planned
from bot.core.windows import AdhocFreeze
from bot.store import rows
from bot.store.db import Sql
from bot.store.events import verdict_event

if TYPE_CHECKING:
    from bot.store import Store


class RecordStore:
    sql: Sql

    # --- ad-hoc freezes -------------------------------------------------------------------------
    def set_freeze(self, service: str, env: str, until: datetime, reason: str, by: str, now: datetime) -> None:
        self.sql.execute(
            "INSERT INTO adhoc_freezes (service, env, until, reason, by, created_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (service, env) DO UPDATE SET until = excluded.until, reason = excluded.reason, "
            "by = excluded.by, created_at = excluded.created_at",
            (service, env, rows.ts(until), reason, by, rows.ts(now)),
        )

    def clear_freeze(self, service: str, env: str) -> bool:
        return bool(
            self.sql.execute("DELETE FROM adhoc_freezes WHERE service = ? AND env = ?", (service, env)).rowcount
        )

    def adhoc_freezes(self, service: str | None = None) -> dict[str, list[AdhocFreeze]]:
        """Ad-hoc freezes by service (all services, or just ``service``), as the window policy takes them."""
        if service is None:
            found = self.sql.query("SELECT * FROM adhoc_freezes ORDER BY service, env")
        else:
            found = self.sql.query("SELECT * FROM adhoc_freezes WHERE service = ? ORDER BY env", (service,))
        by_service: dict[str, list[AdhocFreeze]] = {}
        for row in found:
            by_service.setdefault(row["service"], []).append(
                AdhocFreeze(
                    environment=row["env"],
                    until=rows.need_dt(row["until"]),
                    reason=row["reason"],
                    by=row["by"],
                    created_at=rows.need_dt(row["created_at"]),
                )
            )
        return by_service

    # --- audit ------------------------------------------------------------------------------------
    def audit(
        self,
        *,
        actor: str,
        action: str,
        subject: str,
        now: datetime,
        detail: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        """Append who did what, when, why and from which request. Rows are never changed afterwards."""
        self.sql.execute(
            "INSERT INTO audit (at, actor, action, subject, detail, request_id) VALUES (?, ?, ?, ?, ?, ?)",
            (rows.ts(now), actor, action, subject, json.dumps(detail or {}, sort_keys=True), request_id),
        )

    def audit_since(self, since: datetime | None, limit: int = 1000) -> list[AuditEntry]:
        found = self.sql.query(
            "SELECT * FROM audit WHERE (? IS NULL OR at >= ?) ORDER BY id LIMIT ?",
            (rows.ts(since), rows.ts(since), limit),
        )
        return [
            AuditEntry(
                id=r["id"],
                at=rows.need_dt(r["at"]),
                actor=r["actor"],
                action=r["action"],
                subject=r["subject"],
                detail=json.loads(r["detail"]),
                request_id=r["request_id"],
            )
            for r in found
        ]

    # --- idempotency ------------------------------------------------------------------------------
    def claim(self, key: str, now: datetime) -> bool:
        """True the first time ``key`` is seen (a retried event or a double click gets False)."""
        return bool(
            self.sql.execute(
                "INSERT OR IGNORE INTO idempotency (key, created_at) VALUES (?, ?)", (key, rows.ts(now))
            ).rowcount
        )

    def unclaim(self, key: str) -> None:
        """Give back a claim whose action was refused, so a later attempt may try again."""
        self.sql.execute("DELETE FROM idempotency WHERE key = ?", (key,))

    def mark_job_done(self, key: str, now: datetime) -> bool:
        """Record that a periodic job (e.g. the daily summary of a date) ran; False when it already had."""
        return bool(
            self.sql.execute("INSERT OR IGNORE INTO jobs_done (key, at) VALUES (?, ?)", (key, rows.ts(now))).rowcount
        )

    # --- scheduled measurements (post-release checks) -------------------------------------------
    def schedule_measurements(self, release_id: int, planned: Sequence[tuple[str, int, datetime] | Planned]) -> None:
        """Persist (check, offset seconds, due time) rows — a watch window's ticks with their window
        (:class:`Planned`); re-scheduling the same row is a no-op."""
        with self.sql.transaction():
            for item in planned:
                check_name, offset_s, due_at = item[0], item[1], item[2]
                window = (item.every_s, item.failure_limit) if isinstance(item, Planned) else (None, None)
                self.sql.execute(
                    "INSERT OR IGNORE INTO measurements "
                    "(release_id, check_name, offset_s, due_at, state, every_s, failure_limit) "
                    "VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                    (release_id, check_name, offset_s, rows.ts(due_at), *window),
                )

    def pending_measurements(self, release_id: int | None = None) -> list[dict[str, Any]]:
        found = self.sql.query(
            "SELECT * FROM measurements WHERE state = 'pending' AND (? IS NULL OR release_id = ?) "
            "ORDER BY due_at, release_id, check_name",
            (release_id, release_id),
        )
        for row in found:
            row["due_at"] = rows.need_dt(row["due_at"])
        return found

    def due_measurements(self, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
        """Pending measurements whose time has come, oldest first (served by the (state, due_at) index)."""
        found = self.sql.query(
            "SELECT * FROM measurements WHERE state = 'pending' AND due_at <= ? "
            "ORDER BY due_at, release_id, check_name "
            "LIMIT ?",
            (rows.ts(now), limit),
        )
        for row in found:
            row["due_at"] = rows.need_dt(row["due_at"])
        return found

    def claim_measurement(self, release_id: int, check_name: str, offset_s: int) -> bool:
        """pending → running, once: a measurement is never taken twice, even across restarts."""
        return bool(
            self.sql.execute(
                "UPDATE measurements SET state = 'running' WHERE release_id = ? AND check_name = ? AND offset_s = ? "
                "AND state = 'pending'",
                (release_id, check_name, offset_s),
            ).rowcount
        )

    def requeue_running_measurements(self) -> int:
        """On start: a measurement cut short by a crash was never recorded, so it runs again."""
        return self.sql.execute("UPDATE measurements SET state = 'pending' WHERE state = 'running'").rowcount

    def record_measurement(
        self,
        release_id: int,
        check_name: str,
        offset_s: int,
        *,
        verdict: str,
        value: float | None,
        summary: str,
        query: str | None,
        now: datetime,
        outage_ts: str | None = None,
        reply_ts: str | None = None,
    ) -> None:
        """Record the result; ``outage_ts`` is the reply that reports the backend unreadable (None if it was read);
        ``reply_ts`` a watch window's tally reply, which its next tick edits."""
        with self.sql.transaction():  # the verdict and its outbound event (bot/store/events.py) together
            self.sql.execute(
                "UPDATE measurements SET state = 'done', verdict = ?, value = ?, summary = ?, query = ?, "
                "measured_at = ?, outage_ts = ?, reply_ts = ? WHERE release_id = ? AND check_name = ? AND offset_s = ?",
                (verdict, value, summary, query, rows.ts(now), outage_ts, reply_ts, release_id, check_name, offset_s),
            )
            verdict_event(cast("Store", self), release_id, check_name, offset_s, verdict, value, summary, now)

    def cancel_measurements(
        self, *, release_id: int | None = None, superseded_in: tuple[str, str, int] | None = None
    ) -> list[dict[str, Any]]:
        """Cancel pending measurements in one statement and return the rows cancelled.

        Either those of ``release_id``, or (``superseded_in`` = service, env, newer release id) those of
        every older release of that service and environment.
        """
        params: tuple[Any, ...]
        if release_id is not None:
            where, params = "release_id = ?", (release_id,)
        else:
            assert superseded_in is not None
            where = "release_id IN (SELECT id FROM releases WHERE service = ? AND env = ? AND id < ?)"
            params = superseded_in
        return self.sql.query(
            f"UPDATE measurements SET state = 'cancelled' WHERE {where} AND state = 'pending' "  # noqa: S608
            "RETURNING release_id, check_name, offset_s, every_s",
            params,
        )

    def measurements(self, release_id: int) -> list[dict[str, Any]]:
        return self.sql.query(
            "SELECT * FROM measurements WHERE release_id = ? ORDER BY offset_s, check_name", (release_id,)
        )
