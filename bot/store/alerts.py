"""Alertmanager's alerts and the incidents they make (bot/engine/alerts.py acts on what these return).

An alert occurrence is keyed by Alertmanager's fingerprint and ``startsAt``: Alertmanager re-sends a firing
alert at every ``group_interval`` and in every group it belongs to, and each copy finds its row and changes
nothing. Incidents are one service's trouble in one environment, first firing to resolved, about one release
(or none): a new firing alert is attributed first (the release rolling out, or in whose watch window it started)
and then joins the open incident of the same service, environment and attribution if there is one (a unique
index keeps it to one), so a group of alerts is one incident, one message and one ping — but an alert about a new
release never hides in an older incident that is about something else. :meth:`AlertStore.ingest_alerts` decides
all of it in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from bot.alerts_models import CheckedAlert, Incident, StoredAlert
from bot.store import rows
from bot.store.db import Sql
from bot.store.events import alert_event

if TYPE_CHECKING:
    from bot.store import Store

__all__ = ["AlertStore", "IncidentNews"]


@dataclass(frozen=True)
class IncidentNews:
    """What one webhook call changed about an incident: ``opened`` (its first alert came), ``joined`` (another
    alert joined it), ``resolved`` (its last firing alert ended), ``changed`` (one of several alerts ended)."""

    incident: Incident
    what: frozenset[str]


def _incident(row: Any) -> Incident:
    return Incident(
        id=row["id"],
        service=row["service"],
        env=row["env"],
        release_id=row["release_id"],
        started_at=rows.need_dt(row["started_at"]),
        resolved_at=rows.dt(row["resolved_at"]),
        channel=row["channel"],
        ts=row["ts"],
        thread_ts=row["thread_ts"],
        acknowledged_by=row["acknowledged_by"],
        source=row["source"],
        rollback_asked_at=rows.dt(row["rollback_asked_at"]),
    )


def _alert(row: Any) -> StoredAlert:
    return StoredAlert(
        fingerprint=row["fingerprint"],
        starts_at=rows.need_dt(row["starts_at"]),
        service=row["service"],
        env=row["env"],
        name=row["name"],
        summary=row["summary"],
        firing=row["status"] == "firing",
        ends_at=rows.dt(row["ends_at"]),
        incident_id=row["incident_id"],
    )


class AlertStore:
    sql: Sql

    def ingest_alerts(
        self, alerts: Iterable[CheckedAlert], watch: Mapping[str, timedelta], now: datetime
    ) -> list[IncidentNews]:
        """Record a webhook call's alerts in one transaction; the incidents it changed, oldest first.

        ``watch`` is each environment's watch window: a new incident whose first alert started within it after
        a release there finished belongs to that release. Repeats (a known occurrence in the same state) change
        nothing and are not news.
        """
        news: dict[int, set[str]] = {}
        with self.sql.transaction():
            for alert in alerts:
                key = (alert.fingerprint, rows.ts(alert.starts_at))
                row = self.sql.one("SELECT * FROM alerts WHERE fingerprint = ? AND starts_at = ?", key)
                if alert.firing:
                    if row is not None:
                        continue  # a re-send, or a late copy of an occurrence already resolved: no news
                    incident_id, what = self._incident_for(alert, watch.get(alert.env), now)
                    news.setdefault(incident_id, set()).add(what)
                    self._insert_alert(alert, "firing", None, incident_id, now)
                    alert_event(cast("Store", self), alert.fingerprint, key[1], "firing", now)
                    continue
                ended = alert.ends_at or now
                if row is None:
                    # Resolved before the bot saw it fire (the bot was down, or the route was added later):
                    # kept, so a late firing copy of it is known, but nothing was told, so nothing is news.
                    self._insert_alert(alert, "resolved", ended, None, now)
                    continue
                if row["status"] == "resolved":
                    continue
                self.sql.execute(
                    "UPDATE alerts SET status = 'resolved', ends_at = ? WHERE fingerprint = ? AND starts_at = ?",
                    (rows.ts(ended), *key),
                )
                alert_event(cast("Store", self), alert.fingerprint, key[1], "resolved", now)
                incident_id = row["incident_id"]
                if incident_id is not None:
                    news.setdefault(incident_id, set()).add(self._after_resolve(incident_id))
            found = [self.incident(incident_id) for incident_id in sorted(news)]
        return [IncidentNews(i, frozenset(news[i.id])) for i in found if i is not None]

    def _incident_for(self, alert: CheckedAlert, watch: timedelta | None, now: datetime) -> tuple[int, str]:
        """The open incident of the alert's service, environment and release (joined), or a new one (opened).

        Attributed first: an incident open since before a release went out (say, a disk filling up since
        yesterday, about no release) must not swallow an alert about that release — it would get no reply in the
        release's thread, no ping, no auto_rollback and no change failure. ``release_id IS ?`` matches NULL too.
        """
        starts = rows.ts(alert.starts_at)
        release_id = self._watched_release(alert, watch)
        row = self.sql.one(
            "SELECT id, started_at FROM incidents WHERE service = ? AND env = ? AND ifnull(release_id, 0) = ? "
            "AND resolved_at IS NULL",
            (alert.service, alert.env, release_id or 0),
        )
        if row is not None:
            if starts is not None and starts < row["started_at"]:  # an earlier alert came later: it started then
                self.sql.execute("UPDATE incidents SET started_at = ? WHERE id = ?", (starts, row["id"]))
            return int(row["id"]), "joined"
        cursor = self.sql.execute(
            "INSERT INTO incidents (service, env, release_id, source, started_at, created_at) "
            "VALUES (?, ?, ?, 'alert', ?, ?)",
            (alert.service, alert.env, release_id, starts, rows.ts(now)),
        )
        return int(cursor.lastrowid or 0), "opened"

    def _watched_release(self, alert: CheckedAlert, watch: timedelta | None) -> int | None:
        """The release the alert is about: the one rolling out there when it started (:meth:`_rolling_out`), else
        the one whose watch window it started in: the last release to finish there before the alert started, if
        it finished less than ``watch`` before, reached production, and is not a rollback (after a rollback the
        old version runs again: the alert is not about a new change)."""
        rolling = self._rolling_out(alert)
        if rolling is not None or watch is None:
            return rolling
        row = self.sql.one(
            "SELECT id, kind, finished_at FROM releases WHERE service = ? AND env = ? "
            "AND state IN ('succeeded', 'rolled_back') AND finished_at IS NOT NULL AND finished_at <= ? "
            "ORDER BY finished_at DESC, id DESC LIMIT 1",
            (alert.service, alert.env, rows.ts(alert.starts_at)),
        )
        if row is None or row["kind"] == "rollback":
            return None
        if alert.starts_at - rows.need_dt(row["finished_at"]) >= watch:
            return None
        return int(row["id"])

    def _rolling_out(self, alert: CheckedAlert) -> int | None:
        """The release whose rollout was under way when the alert started: the latest to have started deploying
        (``started_at``) by then, if it had not finished by then and is not a rollback. A queued release that has
        not started deploying changed nothing yet. Seeks the (service, env, id) index from the newest release."""
        row = self.sql.one(
            "SELECT id, kind, finished_at FROM releases WHERE service = ? AND env = ? "
            "AND started_at IS NOT NULL AND started_at <= ? ORDER BY id DESC LIMIT 1",
            (alert.service, alert.env, rows.ts(alert.starts_at)),
        )
        if row is None or row["kind"] == "rollback":
            return None
        if row["finished_at"] is not None and rows.need_dt(row["finished_at"]) <= alert.starts_at:
            return None
        return int(row["id"])

    def _insert_alert(
        self, alert: CheckedAlert, status: str, ends: datetime | None, incident_id: int | None, now: datetime
    ) -> None:
        self.sql.execute(
            "INSERT INTO alerts (fingerprint, starts_at, service, env, name, summary, status, ends_at, incident_id, "
            "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                alert.fingerprint,
                rows.ts(alert.starts_at),
                alert.service,
                alert.env,
                alert.name,
                alert.summary,
                status,
                rows.ts(ends),
                incident_id,
                rows.ts(now),
            ),
        )

    def _after_resolve(self, incident_id: int) -> str:
        """An alert of ``incident_id`` ended: the incident is resolved when none of its alerts fires any more,
        at the end of its last one."""
        row = self.sql.one(
            "SELECT sum(status = 'firing') AS firing, max(ends_at) AS ended FROM alerts WHERE incident_id = ?",
            (incident_id,),
        )
        if row is None or row["firing"]:
            return "changed"
        self.sql.execute(
            "UPDATE incidents SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL", (row["ended"], incident_id)
        )
        return "resolved"

    def incident(self, incident_id: int) -> Incident | None:
        row = self.sql.one("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        return None if row is None else _incident(row)

    def incident_alerts(self, incident_id: int) -> list[StoredAlert]:
        """The alerts of an incident, in the order they started."""
        return [
            _alert(row)
            for row in self.sql.query(
                "SELECT * FROM alerts WHERE incident_id = ? ORDER BY starts_at, fingerprint", (incident_id,)
            )
        ]

    def unshown_incidents(self, since: datetime) -> list[Incident]:
        """Incidents recorded since ``since`` whose message was never posted (a crash between the webhook's
        transaction and the post, or Slack refusing the post): recovery posts them."""
        found = self.sql.query(
            "SELECT * FROM incidents WHERE ts IS NULL AND created_at >= ? ORDER BY id", (rows.ts(since),)
        )
        return [_incident(row) for row in found]

    def rollbacks_unasked(self, envs: Iterable[str], since: datetime) -> list[Incident]:
        """Incidents recorded since ``since`` in ``envs`` (those under ``on_alert: auto_rollback``), about a
        release, whose automatic rollback was never asked (the call that opened them failed before it, or the
        path refused it for now): the next webhook call, or the next start, asks it."""
        names = sorted(set(envs))
        if not names:
            return []
        marks = ", ".join("?" * len(names))
        found = self.sql.query(
            f"SELECT * FROM incidents WHERE rollback_asked_at IS NULL AND release_id IS NOT NULL "  # noqa: S608
            f"AND created_at >= ? AND env IN ({marks}) ORDER BY id",
            (rows.ts(since), *names),
        )
        return [_incident(row) for row in found]

    def set_rollback_asked(self, incident_id: int, now: datetime) -> None:
        """The incident's automatic rollback was asked (the rollback path took it): never asked again."""
        self.sql.execute(
            "UPDATE incidents SET rollback_asked_at = ? WHERE id = ? AND rollback_asked_at IS NULL",
            (rows.ts(now), incident_id),
        )

    def set_incident_message(self, incident_id: int, channel: str, ts: str, thread_ts: str | None) -> None:
        """Where the incident's message is (edited as the incident changes)."""
        self.sql.execute(
            "UPDATE incidents SET channel = ?, ts = ?, thread_ts = ? WHERE id = ?",
            (channel, ts, thread_ts, incident_id),
        )

    def acknowledge_incident(self, incident_id: int, by: str, now: datetime) -> bool:
        """Mark an open incident acknowledged — True only for the one caller that did."""
        cursor = self.sql.execute(
            "UPDATE incidents SET acknowledged_by = ?, acknowledged_at = ? "
            "WHERE id = ? AND acknowledged_by IS NULL AND resolved_at IS NULL",
            (by, rows.ts(now), incident_id),
        )
        return cursor.rowcount == 1

    def release_incidents(self, start: datetime, end: datetime) -> list[Incident]:
        """The incidents that started in the watch window of a release that finished in [start, end) (DORA's
        change failures), earliest first. Incidents are few: the scan is of them, each release found by its key."""
        found = self.sql.query(
            "SELECT i.* FROM incidents i JOIN releases r ON r.id = i.release_id "
            "WHERE i.release_id IS NOT NULL AND r.finished_at >= ? AND r.finished_at < ? ORDER BY i.started_at, i.id",
            (rows.ts(start), rows.ts(end)),
        )
        return [_incident(row) for row in found]
