"""Deploy runs: what a provider is running for a release, recorded before it starts (the fence), and the
write probe /healthz uses to check that the store can still write."""

from __future__ import annotations

from datetime import datetime

from bot.core.models import DeployRun, RunOutcome, RunRole
from bot.store import rows
from bot.store.db import Sql


class DeployRunStore:
    sql: Sql

    def start_deploy_run(
        self,
        *,
        release_id: int,
        step: str,
        action: str,
        role: RunRole,
        provider: str,
        started_at: datetime,
        deadline_at: datetime,
        weight: int | None = None,
        colour: str | None = None,
        output_path: str | None = None,
        pgid: int | None = None,
        proc_start: int | None = None,
        boot_id: str | None = None,
    ) -> int:
        """Record a step as running (before it starts); its id."""
        cursor = self.sql.execute(
            "INSERT INTO deploy_runs (release_id, step, action, role, provider, started_at, deadline_at, weight, "
            "colour, output_path, pgid, proc_start, boot_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                release_id,
                step,
                action,
                role.value,
                provider,
                rows.ts(started_at),
                rows.ts(deadline_at),
                weight,
                colour,
                output_path,
                pgid,
                proc_start,
                boot_id,
            ),
        )
        return int(cursor.lastrowid or 0)

    def identify_deploy_run(self, run_id: int, remote_id: str) -> None:
        """A remote step's run id (or status URL), once its service gave it."""
        self.sql.execute("UPDATE deploy_runs SET remote_id = ? WHERE id = ?", (remote_id, run_id))

    def end_deploy_run(
        self, run_id: int, *, outcome: RunOutcome, exit_status: int | None, error: str | None, now: datetime
    ) -> bool:
        """Close a step with how it ended; False when it was already closed (nothing changed)."""
        cursor = self.sql.execute(
            "UPDATE deploy_runs SET ended_at = ?, outcome = ?, exit_status = ?, error = ? "
            "WHERE id = ? AND ended_at IS NULL",
            (rows.ts(now), outcome.value, exit_status, error, run_id),
        )
        return cursor.rowcount == 1

    def adopt_deploy_run(self, run_id: int, now: datetime) -> None:
        """A restarted bot found this step still running and follows it: its release keeps the lock meanwhile."""
        self.sql.execute("UPDATE deploy_runs SET adopted_at = ? WHERE id = ?", (rows.ts(now), run_id))

    def last_deploy_run(self, release_id: int) -> DeployRun | None:
        """The release's latest step, open or closed."""
        row = self.sql.one(
            "SELECT * FROM deploy_runs WHERE release_id = ? ORDER BY id DESC LIMIT 1",
            (release_id,),
        )
        return rows.deploy_run(row) if row else None

    def left_deploy_run(self, service: str, env: str) -> DeployRun | None:
        """A step a previous process of the bot left running in the environment, while it still runs."""
        row = self.sql.one(
            "SELECT d.* FROM deploy_runs d JOIN releases r ON r.id = d.release_id "
            "WHERE d.ended_at IS NULL AND d.adopted_at IS NOT NULL AND r.service = ? AND r.env = ? "
            "ORDER BY d.id LIMIT 1",
            (service, env),
        )
        return rows.deploy_run(row) if row else None

    def probe_write(self, now: datetime) -> None:
        """Write one row: raises (StoreWriteError through AsyncStore) when the store cannot write."""
        self.sql.execute(
            "INSERT INTO write_probe (id, written_at) VALUES (1, ?) "
            "ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at",
            (rows.ts(now),),
        )
