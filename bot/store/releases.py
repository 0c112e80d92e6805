"""Releases, their state changes, environment state and the per-(service, env) release lock."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from bot.core.models import EnvState, Lock, Release, ReleaseKind, ReleaseState
from bot.store import rows
from bot.store.db import Sql
from bot.store.events import release_event

if TYPE_CHECKING:
    from bot.store import Store

_UPDATABLE = {
    "held_step",
    "started_at",
    "finished_at",
    "channel",
    "thread_ts",
    "rollback_target",
    "rollback_method",
    "healthy",
    "change_failure",
    "verdict",
    "force_reason",
    "forced_by",
    "output_tail",
    "error",
    "weight",
    "colour",
    "checklist",
    "notes",
    "previous_version",
}


class LockHeld(Exception):
    """The environment is busy: another release (or a manual lock) holds it."""

    def __init__(self, lock: Lock) -> None:
        super().__init__(f"{lock.service}/{lock.env} is locked by {lock.holder}")
        self.lock = lock


def _encode(field: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return rows.ts(value)
    if field in {"checklist", "notes"} and value is not None:
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return int(value)
    return value


class ReleaseStore:
    sql: Sql

    def create_release(
        self,
        *,
        service: str,
        env: str,
        version: str,
        kind: ReleaseKind,
        state: ReleaseState,
        requested_by: str,
        now: datetime,
        take_lock: bool,
        source_env: str | None = None,
        rollback_of: int | None = None,
        **fields: Any,
    ) -> Release:
        """Insert a release; with ``take_lock`` also take the env's release lock atomically or raise LockHeld.

        A manual lock (``/release lock``) stops everyone but its holder; rollbacks pass it, because
        restoring service must never wait for a lock note.
        """
        with self.sql.transaction():
            if take_lock:
                self._raise_if_locked(service, env, requested_by, kind)
            current = self.sql.one("SELECT version FROM env_state WHERE service = ? AND env = ?", (service, env))
            cursor = self.sql.execute(
                "INSERT INTO releases (service, env, version, kind, state, requested_by, requested_at, source_env, "
                "rollback_of, previous_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    service,
                    env,
                    version,
                    kind.value,
                    state.value,
                    requested_by,
                    rows.ts(now),
                    source_env,
                    rollback_of,
                    current["version"] if current else None,
                ),
            )
            release_id = int(cursor.lastrowid or 0)
            self._event(release_id, state.value, requested_by, f"{kind.value} {version} requested", now)
            if fields:
                self._update(release_id, fields)
            if take_lock:
                self.sql.execute(
                    "INSERT INTO release_locks (service, env, release_id, holder, acquired_at) VALUES (?, ?, ?, ?, ?)",
                    (service, env, release_id, requested_by, rows.ts(now)),
                )
            # Its outbound event, in the same transaction (bot/store/events.py).
            release_event(
                cast("Store", self),
                release_id,
                state.value,
                previous=None,
                actor=requested_by,
                detail=f"{kind.value} {version} requested",
                now=now,
            )
        found = self.get_release(release_id)
        assert found is not None
        return found

    def _raise_if_locked(self, service: str, env: str, user: str, kind: ReleaseKind) -> None:
        held = self.sql.one(
            "SELECT l.*, r.version FROM release_locks l JOIN releases r ON r.id = l.release_id "
            "WHERE l.service = ? AND l.env = ?",
            (service, env),
        )
        if held is not None:
            raise LockHeld(
                Lock(
                    service=service,
                    env=env,
                    kind="release",
                    holder=held["holder"],
                    reason=f"release of {held['version']} in progress",
                    acquired_at=rows.need_dt(held["acquired_at"]),
                    release_id=held["release_id"],
                )
            )
        manual = self.manual_lock(service, env)
        if manual is not None and manual.holder != user and kind is not ReleaseKind.ROLLBACK:
            raise LockHeld(manual)

    def queue_approved(self, release_id: int, *, actor: str, detail: str, now: datetime) -> Release | None:
        """An approved release: take its environment's lock and move it to ``queued`` in one transaction.

        The queued release; None when it is no longer awaiting approval (already queued by another path, or
        cancelled), so a repeated attempt (a restart resuming an approval) changes nothing; raises LockHeld when
        busy.
        """
        with self.sql.transaction():
            release = self.get_release(release_id)
            if release is None or release.state is not ReleaseState.AWAITING_APPROVAL:
                return None
            self._raise_if_locked(release.service, release.env, release.requested_by, release.kind)
            self.sql.execute(
                "INSERT INTO release_locks (service, env, release_id, holder, acquired_at) VALUES (?, ?, ?, ?, ?)",
                (release.service, release.env, release_id, release.requested_by, rows.ts(now)),
            )
            return self.transition(
                release_id,
                ReleaseState.QUEUED,
                actor=actor,
                detail=detail,
                now=now,
                only_from={ReleaseState.AWAITING_APPROVAL},
            )

    def approved_but_waiting(self) -> list[tuple[int, int]]:
        """(approval id, release id) of approvals granted whose release still waits: a crash came between."""
        found = self.sql.query(
            "SELECT a.id AS approval_id, r.id AS release_id FROM approvals a "
            "JOIN releases r ON r.id = json_extract(a.subject, '$.release_id') "
            "WHERE a.state = 'approved' AND r.state = 'awaiting_approval' ORDER BY a.id"
        )
        return [(row["approval_id"], row["release_id"]) for row in found]

    def _event(self, release_id: int, state: str, actor: str, detail: str, now: datetime) -> None:
        self.sql.execute(
            "INSERT INTO release_events (release_id, at, state, actor, detail) VALUES (?, ?, ?, ?, ?)",
            (release_id, rows.ts(now), state, actor, detail),
        )

    def _update(self, release_id: int, fields: dict[str, Any]) -> None:
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        values = tuple(_encode(name, value) for name, value in fields.items())
        self.sql.execute(f"UPDATE releases SET {assignments} WHERE id = ?", (*values, release_id))  # noqa: S608

    def update_release(self, release_id: int, **fields: Any) -> Release:
        """Set descriptive fields (thread ts, output tail, notes…) without a state change; the release now."""
        with self.sql.transaction():
            self._update(release_id, fields)
            found = self.get_release(release_id)
        if found is None:
            raise KeyError(release_id)
        return found

    def transition(
        self,
        release_id: int,
        to: ReleaseState,
        *,
        actor: str,
        detail: str,
        now: datetime,
        only_from: set[ReleaseState] | None = None,
        **fields: Any,
    ) -> Release | None:
        """Move a release to ``to`` (conditionally), record the event, settle lock and env state.

        Returns the release as it now is, or None when it was not in one of ``only_from`` — the caller
        lost a race (a double click, a concurrent retry) and must not repeat the effect.
        """
        with self.sql.transaction():
            row = self.sql.one("SELECT state, service, env, version FROM releases WHERE id = ?", (release_id,))
            if row is None or (only_from is not None and ReleaseState(row["state"]) not in only_from):
                return None
            self.sql.execute("UPDATE releases SET state = ? WHERE id = ?", (to.value, release_id))
            if to is ReleaseState.DEPLOYING:
                fields.setdefault("started_at", now)
            if to.terminal:
                fields.setdefault("finished_at", now)
            if fields:
                self._update(release_id, fields)
            self._event(release_id, to.value, actor, detail, now)
            release_event(
                cast("Store", self), release_id, to.value, previous=row["state"], actor=actor, detail=detail, now=now
            )
            if to.terminal:
                self.sql.execute("DELETE FROM release_locks WHERE release_id = ?", (release_id,))
            if to is ReleaseState.SUCCEEDED:
                self.sql.execute(
                    "INSERT INTO env_state (service, env, version, release_id, since, by, colour) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (service, env) DO UPDATE SET version = excluded.version, "
                    "release_id = excluded.release_id, since = excluded.since, by = excluded.by, "
                    "colour = excluded.colour",
                    (
                        row["service"],
                        row["env"],
                        row["version"],
                        release_id,
                        rows.ts(now),
                        actor,
                        fields.get("colour"),
                    ),
                )
        return self.get_release(release_id)

    def get_release(self, release_id: int) -> Release | None:
        row = self.sql.one("SELECT * FROM releases WHERE id = ?", (release_id,))
        return rows.release(row) if row else None

    def record_event(self, release_id: int, detail: str, *, actor: str, now: datetime) -> None:
        """Note a step in the release's history without changing its state."""
        with self.sql.transaction():
            row = self.sql.one("SELECT state FROM releases WHERE id = ?", (release_id,))
            if row is not None:
                self._event(release_id, row["state"], actor, detail, now)

    def succeeded_without_after_steps(self) -> list[Release]:
        """Releases live in some environment (not rollbacks) whose after-success steps never finished."""
        found = self.sql.query(
            "SELECT r.* FROM env_state e JOIN releases r ON r.id = e.release_id "
            "WHERE r.state = 'succeeded' AND r.kind != 'rollback' AND r.after_success_at IS NULL ORDER BY r.id"
        )
        return [rows.release(r) for r in found]

    def mark_after_success(self, release_id: int, now: datetime) -> None:
        """The after-success steps of this release are done (start-up will not run them again)."""
        self.sql.execute("UPDATE releases SET after_success_at = ? WHERE id = ?", (rows.ts(now), release_id))

    def release_with_notes(self, service: str, version: str, previous: str | None = None) -> Release | None:
        """The newest release of ``version`` that has release notes (replacing ``previous`` when given)."""
        row = self.sql.one(
            "SELECT * FROM releases WHERE service = ? AND version = ? AND notes IS NOT NULL "
            "AND json_extract(notes, '$.unavailable') IS NULL AND (? IS NULL OR previous_version = ?) "
            "ORDER BY id DESC LIMIT 1",
            (service, version, previous, previous),
        )
        return rows.release(row) if row else None

    def release_events(self, release_id: int) -> list[dict[str, Any]]:
        return self.sql.query("SELECT * FROM release_events WHERE release_id = ? ORDER BY id", (release_id,))

    def history(self, service: str, env: str | None = None, limit: int = 10) -> list[Release]:
        """Most recent releases first; served by the (service, env, id) index even with millions of rows."""
        if env is None:
            found = self.sql.query(
                "SELECT * FROM releases WHERE service = ? ORDER BY id DESC LIMIT ?", (service, limit)
            )
        else:
            found = self.sql.query(
                "SELECT * FROM releases WHERE service = ? AND env = ? ORDER BY id DESC LIMIT ?",
                (service, env, limit),
            )
        return [rows.release(r) for r in found]

    def running_releases(self) -> list[Release]:
        found = self.sql.query("SELECT * FROM releases WHERE state IN ('queued', 'deploying', 'verifying') ORDER BY id")
        return [rows.release(r) for r in found]

    def env_states(self, service: str) -> list[EnvState]:
        return [rows.env_state(r) for r in self.sql.query("SELECT * FROM env_state WHERE service = ?", (service,))]

    def env_state(self, service: str, env: str) -> EnvState | None:
        row = self.sql.one("SELECT * FROM env_state WHERE service = ? AND env = ?", (service, env))
        return rows.env_state(row) if row else None

    def env_colour(self, service: str, env: str) -> str | None:
        row = self.sql.one("SELECT colour FROM env_state WHERE service = ? AND env = ?", (service, env))
        return row["colour"] if row else None

    def succeeded_in(self, service: str, env: str, version: str) -> bool:
        """Whether ``version`` was ever released successfully to ``env`` (the pipeline-order rule)."""
        row = self.sql.one(
            "SELECT 1 FROM releases WHERE service = ? AND env = ? AND version = ? "
            "AND state IN ('succeeded', 'rolled_back') LIMIT 1",
            (service, env, version),
        )
        return row is not None

    def last_healthy(self, service: str, env: str, *, before_id: int | None, not_version: str | None) -> Release | None:
        """The latest release that succeeded there and was not later judged a failure."""
        found = self.sql.one(
            "SELECT * FROM releases WHERE service = ? AND env = ? AND state = 'succeeded' "
            "AND change_failure = 0 AND (healthy IS NULL OR healthy = 1) AND (? IS NULL OR id < ?) "
            "AND (? IS NULL OR version != ?) ORDER BY id DESC LIMIT 1",
            (service, env, before_id, before_id, not_version, not_version),
        )
        return rows.release(found) if found else None

    def healthy_in(self, service: str, env: str, version: str) -> bool:
        """Whether ``version`` ran healthily in ``env``: it succeeded there, was never rolled back and no check
        or person judged it a failure (what a rollback may return to without the forward gates)."""
        row = self.sql.one(
            "SELECT 1 FROM releases WHERE service = ? AND env = ? AND version = ? AND state = 'succeeded' "
            "AND change_failure = 0 AND (healthy IS NULL OR healthy = 1) LIMIT 1",
            (service, env, version),
        )
        return row is not None

    def awaiting_approval(self, service: str, env: str, version: str) -> Release | None:
        """A request for the same version that is still waiting for approval (at most one may)."""
        found = self.sql.one(
            "SELECT * FROM releases WHERE service = ? AND env = ? AND version = ? AND state = 'awaiting_approval' "
            "ORDER BY id DESC LIMIT 1",
            (service, env, version),
        )
        return rows.release(found) if found else None

    def lock_of(self, service: str, env: str) -> Lock | None:
        """The running release's lock on an environment, if any."""
        held = self.sql.one(
            "SELECT l.*, r.version FROM release_locks l JOIN releases r ON r.id = l.release_id "
            "WHERE l.service = ? AND l.env = ?",
            (service, env),
        )
        if held is None:
            return None
        return Lock(
            service=service,
            env=env,
            kind="release",
            holder=held["holder"],
            reason=f"release of {held['version']} in progress",
            acquired_at=rows.need_dt(held["acquired_at"]),
            release_id=held["release_id"],
        )

    def manual_lock(self, service: str, env: str) -> Lock | None:
        row = self.sql.one("SELECT * FROM manual_locks WHERE service = ? AND env = ?", (service, env))
        if row is None:
            return None
        return Lock(
            service=service,
            env=env,
            kind="manual",
            holder=row["holder"],
            reason=row["reason"],
            acquired_at=rows.need_dt(row["acquired_at"]),
        )

    def set_manual_lock(self, service: str, env: str, holder: str, reason: str, now: datetime) -> Lock | None:
        """Take the manual lock; returns the existing lock instead when someone else holds it."""
        with self.sql.transaction():
            existing = self.manual_lock(service, env)
            if existing is not None and existing.holder != holder:
                return existing
            self.sql.execute(
                "INSERT INTO manual_locks (service, env, holder, reason, acquired_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (service, env) DO UPDATE SET reason = excluded.reason, acquired_at = excluded.acquired_at",
                (service, env, holder, reason, rows.ts(now)),
            )
        return None

    def clear_manual_lock(self, service: str, env: str) -> Lock | None:
        """Remove the manual lock and return what it was (None when there was none)."""
        with self.sql.transaction():
            existing = self.manual_lock(service, env)
            self.sql.execute("DELETE FROM manual_locks WHERE service = ? AND env = ?", (service, env))
        return existing

    def interrupt_running(self, now: datetime) -> list[Release]:
        """On start: every release that was running when the process died becomes ``interrupted``, except one
        whose deploy step is still running and followed (adopted): it keeps its lock until that step ends."""
        interrupted = []
        followed = {
            row["release_id"]
            for row in self.sql.query(
                "SELECT release_id FROM deploy_runs WHERE ended_at IS NULL AND adopted_at IS NOT NULL"
            )
        }
        for release in self.running_releases():
            if release.id in followed:
                continue
            if self.transition(
                release.id,
                ReleaseState.INTERRUPTED,
                actor="release-bot",
                detail="the bot restarted while this release was running",
                now=now,
                only_from={ReleaseState.QUEUED, ReleaseState.DEPLOYING, ReleaseState.VERIFYING},
            ):
                interrupted.append(release)
        return interrupted
