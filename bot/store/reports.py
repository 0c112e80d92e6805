"""Reporting reads: what summaries, App Home and `/release status` show, each in as few queries as possible.

Measured at 1,000,000 releases (bench/scale.py): each of these answers in well under 50 ms.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

from bot.core.models import EnvState, Lock
from bot.core.windows import AdhocFreeze
from bot.store import rows
from bot.store.db import Sql


class StatusRows(NamedTuple):
    """The rows `/release status` shows for one service (Store.status_snapshot)."""

    states: tuple[EnvState, ...]
    locks: tuple[Lock, ...]
    freezes: tuple[AdhocFreeze, ...]


class ReportStore:
    sql: Sql

    def production_outcomes(self, envs: dict[str, str], start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Production releases (not rollbacks) finished in [start, end), with what DORA needs per release.

        ``envs`` maps each service to its production environment (the last pipeline stage); each is one
        range seek, its rows in finishing order (service after service). Each row has id, service, state,
        verdict, finished_at, version, committed_at (the candidate's) and ``failure``: None, or for a
        change failure (failed, rolled back, or a FAIL verdict) a dict of its thread (channel, thread_ts)
        and the times its failure was detected and recovered from (failed_check_at,
        rollback_requested_at, rollback_done_at, next_success_at).
        """
        found: list[dict[str, Any]] = []
        for service, env in envs.items():
            found += self.sql.query(_PRODUCTION_OUTCOMES, (service, env, rows.ts(start), rows.ts(end)))
        for row in found:
            if row["failure"] is not None:
                row["failure"] = json.loads(row["failure"])
        return found

    def counts_by_env(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Releases per service, environment, kind and state finished in [start, end) (a covering-index scan)."""
        return self.sql.query(
            "SELECT service, env, kind, state, count(*) AS n FROM releases "
            "WHERE finished_at >= ? AND finished_at < ? GROUP BY service, env, kind, state ORDER BY service, env",
            (rows.ts(start), rows.ts(end)),
        )

    def unmark_job_done(self, key: str) -> None:
        """Forget that a periodic job ran (its post failed), so a later attempt may run it again."""
        self.sql.execute("DELETE FROM jobs_done WHERE key = ?", (key,))

    def all_env_states(self) -> list[EnvState]:
        """What runs where, for every service (the App Home reads it in one query)."""
        return [rows.env_state(r) for r in self.sql.query("SELECT * FROM env_state ORDER BY service, env")]

    def all_locks(self, service: str | None = None) -> list[Lock]:
        """Every release lock and manual lock in force (of one service, or all), release locks first."""
        held = self.sql.query(
            "SELECT l.*, r.version FROM release_locks l JOIN releases r ON r.id = l.release_id "
            "WHERE ?1 IS NULL OR l.service = ?1 ORDER BY l.service, l.env",
            (service,),
        )
        manual = self.sql.query(
            "SELECT * FROM manual_locks WHERE ?1 IS NULL OR service = ?1 ORDER BY service, env", (service,)
        )
        return [
            Lock(
                service=row["service"],
                env=row["env"],
                kind="release",
                holder=row["holder"],
                reason=f"release of {row['version']} in progress",
                acquired_at=rows.need_dt(row["acquired_at"]),
                release_id=row["release_id"],
            )
            for row in held
        ] + [
            Lock(
                service=row["service"],
                env=row["env"],
                kind="manual",
                holder=row["holder"],
                reason=row["reason"],
                acquired_at=rows.need_dt(row["acquired_at"]),
            )
            for row in manual
        ]


# Served by the covering (service, env, finished_at, kind, state, verdict, version) index plus the
# candidate's row. What only a change failure needs is looked up for those rows alone and comes back
# as one JSON column: the fewer columns per row, the faster thousands of rows reach Python.
_FAILURE = "(r.state != 'succeeded' OR r.verdict = 'fail')"
# A FAIL row that decided its check FAIL: an offset's, or the watch tick whose failure took the window past its
# failure_limit (bot/core/watch.py). A tolerated tick's FAIL failed nothing: it must not date a detection.
_DECIDED = """(m.every_s IS NULL OR coalesce(m.failure_limit, 0) + 1 = (
    SELECT count(*) FROM measurements t WHERE t.release_id = m.release_id AND t.check_name = m.check_name
      AND t.every_s IS NOT NULL AND t.verdict = 'fail' AND t.offset_s <= m.offset_s))"""
_PRODUCTION_OUTCOMES = f"""
SELECT r.id, r.service, r.state, r.verdict, r.finished_at, r.version, c.committed_at,
       CASE WHEN {_FAILURE} THEN (
           SELECT json_object(
               'channel', x.channel,
               'thread_ts', x.thread_ts,
               'failed_check_at', (SELECT min(m.measured_at) FROM measurements m
                                    WHERE m.release_id = r.id AND m.verdict = 'fail' AND {_DECIDED}),
               'rollback_requested_at', (SELECT min(b.requested_at) FROM releases b WHERE b.rollback_of = r.id),
               'rollback_done_at', (SELECT min(b.finished_at) FROM releases b
                                     WHERE b.rollback_of = r.id AND b.state = 'succeeded'),
               'next_success_at', (SELECT n.finished_at FROM releases n
                                    WHERE n.service = r.service AND n.env = r.env AND n.id > r.id
                                      AND n.state = 'succeeded' AND n.kind != 'rollback'
                                    ORDER BY n.id LIMIT 1))
           FROM releases x WHERE x.id = r.id)
       END AS failure
FROM releases r LEFT JOIN candidates c ON c.service = r.service AND c.version = r.version
WHERE r.service = ? AND r.env = ? AND r.finished_at >= ? AND r.finished_at < ?
  AND r.kind != 'rollback' AND r.state IN ('succeeded', 'failed', 'rolled_back')
ORDER BY r.finished_at
"""  # noqa: S608 - a constant condition, no input
