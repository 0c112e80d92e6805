"""Outbound events and their deliveries: a transactional outbox (docs/events.md).

``record_event`` writes an event, and one ``deliveries`` row for each target whose subscription takes it, inside
the caller's transaction: the event exists exactly when the change it describes was committed. The delivery
worker (``bot.events.deliver``) drains ``deliveries`` per target in event order through the functions below;
they run on the store thread. No HTTP here: targets are names (a webhook URL, or ``github``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from bot.config.events import EVENT_TYPES, PREFIX, target_label, type_matches
from bot.store import rows
from bot.store.db import Sql

if TYPE_CHECKING:
    from bot.store import Store

GITHUB = "github"  # the target name of GitHub Deployments


@dataclass(frozen=True)
class EventTarget:
    """Where events go: ``name`` (a webhook URL or ``github``) takes the types its ``patterns`` match, about
    ``services`` only when given (an event without a service then goes nowhere). ``label`` is what metrics and
    logs call it (a webhook's configured name); None: the URL's scheme, host and port (``target_label``)."""

    name: str
    patterns: tuple[str, ...]
    services: frozenset[str] | None = None
    label: str | None = None

    def takes(self, type_: str, service: str | None) -> bool:
        if self.services is not None and service not in self.services:
            return False
        return any(type_matches(pattern, type_) for pattern in self.patterns)


@dataclass(frozen=True)
class StoredEvent:
    """One recorded event; ``id`` is its CloudEvents id (the database's instance name and ``seq``)."""

    seq: int
    id: str
    type: str
    subject: str
    time: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class Replay:
    """A page of ``GET /api/v1/events``: the events after ``since``; ``truncated`` when some of the events after
    ``since`` were pruned (past ``events.retention``) and can no longer be replayed."""

    events: list[StoredEvent]
    truncated: bool


@dataclass(frozen=True)
class Pending:
    """The deliveries waiting for one target: how many, and when the oldest was written."""

    target: str
    count: int
    oldest: datetime


@dataclass(frozen=True)
class Delivery:
    """An event on its way to one target, as it was before the attempt now begun."""

    event: StoredEvent
    target: str
    attempts: int  # earlier attempts
    in_doubt: bool  # an earlier attempt may have reached the target
    created_at: datetime
    last_error: str | None


def _instance(sql: Sql) -> str:
    row = sql.one("SELECT instance FROM event_source WHERE id = 1")
    return str(row["instance"]) if row else "0"


def _event(row: dict[str, Any], instance: str) -> StoredEvent:
    return StoredEvent(
        seq=row["id"],
        id=f"{instance}-{row['id']}",
        type=row["type"],
        subject=row["subject"],
        time=rows.need_dt(row["time"]),
        data=json.loads(row["data"]),
    )


def record_event(store: Store, type_: str, subject: str, data: dict[str, Any], now: datetime) -> int:
    """Record an event (and its deliveries) in the caller's transaction, or in one of its own; its sequence number.

    ``type_`` is a full type or a short one (``train.departed``); an unknown type raises ValueError and writes
    nothing. ``data`` must be JSON; its ``service``, when present, is what per-service targets (GitHub) go by.
    """
    full = type_ if type_.startswith(PREFIX) else PREFIX + type_
    if full not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r} (bot.config.events.EVENT_TYPES lists them)")
    body = json.dumps(data, sort_keys=True, ensure_ascii=False)
    service = data.get("service")
    targets = [t.name for t in store.event_targets if t.takes(full, service if isinstance(service, str) else None)]
    with store.sql.transaction():
        cursor = store.sql.execute(
            "INSERT INTO events (type, subject, time, data) VALUES (?, ?, ?, ?)", (full, subject, rows.ts(now), body)
        )
        seq = int(cursor.lastrowid or 0)
        for target in targets:
            store.sql.execute(
                "INSERT INTO deliveries (event_id, target, created_at) VALUES (?, ?, ?)", (seq, target, rows.ts(now))
            )
    if targets and store.event_hook is not None:
        store.event_hook()  # wakes the worker; a rolled-back caller only costs it one empty read
    return seq


def release_event(
    store: Store, release_id: int, state: str, *, previous: str | None, actor: str, detail: str, now: datetime
) -> None:
    """The ``release.<state>`` event of a release that just reached ``state`` (from ``previous``)."""
    row = store.sql.one(
        "SELECT r.*, c.commit_sha FROM releases r "
        "LEFT JOIN candidates c ON c.service = r.service AND c.version = r.version WHERE r.id = ?",
        (release_id,),
    )
    if row is None:
        return
    data = {
        "release_id": release_id,
        "service": row["service"],
        "env": row["env"],
        "version": row["version"],
        "kind": row["kind"],
        "state": state,
        "previous_state": previous,
        "actor": actor,
        "detail": detail,
        "requested_by": row["requested_by"],
        "commit": row["commit_sha"],
        "previous_version": row["previous_version"],
        "rollback_of": row["rollback_of"],
        "channel": row["channel"],
        "thread_ts": row["thread_ts"],
    }
    subject = f"{row['service']}/{row['env']}/release/{release_id}"
    record_event(store, f"release.{state}", subject, data, now)


def approval_event(store: Store, approval_id: int, what: str, now: datetime, **extra: Any) -> None:
    """The ``approval.<what>`` event of an approval as it now is (requested, voted, approved, denied…)."""
    row = store.sql.one("SELECT * FROM approvals WHERE id = ?", (approval_id,))
    if row is None:
        return
    subject_of = json.loads(row["subject"])
    data = {
        "approval_id": approval_id,
        "kind": row["kind"],
        "service": row["service"],
        "env": row["env"],
        "state": row["state"],
        "requester": row["requester"],
        "required": row["required"],
        "decided_by": row["decided_by"],
        "reason": row["reason"],
        "release_id": subject_of.get("release_id") if isinstance(subject_of, dict) else None,
        **extra,
    }
    record_event(store, f"approval.{what}", f"{row['service']}/{row['env']}/approval/{approval_id}", data, now)


def verdict_event(
    store: Store, release_id: int, check_name: str, offset_s: int, verdict: str, value: float | None, summary: str,
    now: datetime,
) -> None:  # fmt: skip
    """The ``check.verdict`` event of one measurement of a release's check."""
    row = store.sql.one("SELECT service, env, version FROM releases WHERE id = ?", (release_id,))
    if row is None:
        return
    data = {
        "release_id": release_id,
        "service": row["service"],
        "env": row["env"],
        "version": row["version"],
        "check": check_name,
        "offset_s": offset_s,
        "verdict": verdict,
        "value": value,
        "summary": summary,
    }
    subject = f"{row['service']}/{row['env']}/release/{release_id}/check/{check_name}"
    record_event(store, "check.verdict", subject, data, now)


def alert_event(store: Store, fingerprint: str, starts_at: str | None, what: str, now: datetime) -> None:
    """The ``alert.<what>`` event (firing, resolved) of one Alertmanager alert occurrence as it now is."""
    row = store.sql.one(
        "SELECT a.*, i.release_id FROM alerts a LEFT JOIN incidents i ON i.id = a.incident_id "
        "WHERE a.fingerprint = ? AND a.starts_at IS ?",
        (fingerprint, starts_at),
    )
    if row is None:
        return
    data = {
        "fingerprint": fingerprint,
        "service": row["service"],
        "env": row["env"],
        "name": row["name"],
        "summary": row["summary"],
        "status": row["status"],
        "starts_at": row["starts_at"],
        "ends_at": row["ends_at"],
        "incident_id": row["incident_id"],
        "release_id": row["release_id"],  # the release whose watch window it started in, if any
    }
    record_event(store, f"alert.{what}", f"{row['service']}/{row['env']}/alert/{fingerprint}", data, now)


def departure_event(store: Store, departure_id: int, state: str, now: datetime) -> None:
    """The ``train.<state>`` event (departed, held, missed, cancelled) of a release train's departure as it now is."""
    row = store.sql.one("SELECT * FROM train_departures WHERE id = ?", (departure_id,))
    if row is None:
        return
    data = {
        "departure_id": departure_id,
        "env": row["env"],
        "at": row["at"],
        "state": state,
        "reason": row["reason"],
        "held_by": row["held_by"],
    }
    record_event(store, f"train.{state}", f"{row['env']}/train/{departure_id}", data, now)


# --- the delivery worker's operations (bot/events/deliver.py) ------------------------------------------------


def take_delivery(store: Store, target: str) -> Delivery | None:
    """The oldest pending delivery to ``target``, its attempt begun: counted and marked in doubt before the
    request leaves, so a crash mid-request is remembered. None when the target has nothing pending."""
    with store.sql.transaction():
        row = store.sql.one(
            "SELECT d.*, e.type, e.subject, e.time, e.data FROM deliveries d JOIN events e ON e.id = d.event_id "
            "WHERE d.target = ? AND d.state = 'pending' ORDER BY d.event_id LIMIT 1",
            (target,),
        )
        if row is None:
            return None
        store.sql.execute(
            "UPDATE deliveries SET attempts = attempts + 1, in_doubt = 1 WHERE event_id = ? AND target = ?",
            (row["event_id"], target),
        )
        event = _event({**row, "id": row["event_id"]}, _instance(store.sql))
    return Delivery(
        event=event,
        target=target,
        attempts=row["attempts"],
        in_doubt=bool(row["in_doubt"]),
        created_at=rows.need_dt(row["created_at"]),
        last_error=row["last_error"],
    )


def delivery_sent(store: Store, event_id: int, target: str, now: datetime, note: str | None = None) -> None:
    store.sql.execute(
        "UPDATE deliveries SET state = 'sent', in_doubt = 0, sent_at = ?, last_error = ? WHERE event_id = ? "
        "AND target = ?",
        (rows.ts(now), note, event_id, target),
    )


def delivery_retry(store: Store, event_id: int, target: str, *, next_at: datetime, error: str, in_doubt: bool) -> None:
    store.sql.execute(
        "UPDATE deliveries SET next_at = ?, last_error = ?, in_doubt = ? WHERE event_id = ? AND target = ? "
        "AND state = 'pending'",
        (rows.ts(next_at), error[:500], int(in_doubt), event_id, target),
    )


def delivery_dead(store: Store, event_id: int, target: str, error: str, now: datetime) -> None:
    """Given up on: kept, with the reason, and never sent again."""
    store.sql.execute(
        "UPDATE deliveries SET state = 'dead', sent_at = ?, last_error = ? WHERE event_id = ? AND target = ?",
        (rows.ts(now), error[:500], event_id, target),
    )


def pending_targets(store: Store) -> list[str]:
    """Targets with deliveries still to make (on start, each gets a worker)."""
    return [r["target"] for r in store.sql.query("SELECT DISTINCT target FROM deliveries WHERE state = 'pending'")]


def drop_unconfigured(store: Store, configured: list[str], now: datetime) -> dict[str, int]:
    """Give up on pending deliveries to targets the config no longer names (a webhook removed, or every target):
    how many, per target."""
    marks = ", ".join("?" for _ in configured)
    # `NOT IN ()` is no SQL: with nothing configured every pending row goes (NOT IN (NULL) would match none).
    where = f"state = 'pending' AND target NOT IN ({marks})" if configured else "state = 'pending'"
    with store.sql.transaction():
        found = store.sql.query(
            f"SELECT target, count(*) AS n FROM deliveries WHERE {where} GROUP BY target ORDER BY target",  # noqa: S608
            tuple(configured),
        )
        store.sql.execute(
            f"UPDATE deliveries SET state = 'dead', sent_at = ?, last_error = 'target no longer configured' "  # noqa: S608
            f"WHERE {where}",
            (rows.ts(now), *configured),
        )
    return {r["target"]: int(r["n"]) for r in found}


def prune_deliveries(store: Store, before: datetime) -> int:
    """Forget finished deliveries made before ``before`` (the events stay, for replay)."""
    return store.sql.execute(
        "DELETE FROM deliveries WHERE state != 'pending' AND created_at < ?", (rows.ts(before),)
    ).rowcount


def prune_events(store: Store, before: datetime) -> int:
    """Delete the events recorded before ``before`` whose deliveries are all settled (sent or given up), with
    those deliveries; how many. The highest sequence number deleted is remembered (``event_source``), so a replay
    from before it knows it is incomplete (``Replay.truncated``). An event still pending for some target is kept
    until it is delivered or given up: pruning never loses a delivery."""
    with store.sql.transaction():
        doomed = (
            "SELECT id FROM events e WHERE e.time < ? "
            "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state = 'pending')"
        )
        top = store.sql.one(f"SELECT max(id) AS top, count(*) AS n FROM ({doomed})", (rows.ts(before),))  # noqa: S608
        if top is None or not top["n"]:
            return 0
        store.sql.execute(f"DELETE FROM deliveries WHERE event_id IN ({doomed})", (rows.ts(before),))  # noqa: S608
        store.sql.execute(f"DELETE FROM events WHERE id IN ({doomed})", (rows.ts(before),))  # noqa: S608
        store.sql.execute(
            "UPDATE event_source SET pruned_through = max(pruned_through, ?) WHERE id = 1", (int(top["top"]),)
        )
    return int(top["n"])


def pending_by_target(store: Store) -> list[Pending]:
    """Each target with deliveries waiting: how many, and the oldest's time (for /metrics)."""
    found = store.sql.query(
        "SELECT target, count(*) AS n, min(created_at) AS oldest FROM deliveries WHERE state = 'pending' "
        "GROUP BY target ORDER BY target"
    )
    return [Pending(r["target"], int(r["n"]), rows.need_dt(r["oldest"])) for r in found]


def label_of(targets: tuple[EventTarget, ...], target: str) -> str:
    """What metrics and logs call ``target``: its configured label, or the safe part of its name."""
    for known in targets:
        if known.name == target and known.label:
            return known.label
    return target_label(target)


def delivery_counts(store: Store) -> dict[str, int]:
    """Deliveries per state, e.g. ``{"pending": 2, "sent": 40}``."""
    found = store.sql.query("SELECT state, count(*) AS n FROM deliveries GROUP BY state")
    return {r["state"]: int(r["n"]) for r in found}


# --- GitHub deployments made for releases (bot/github_deployments.py) ------------------------------------------


def github_deployment(store: Store, release_id: int) -> int | None:
    row = store.sql.one("SELECT deployment_id FROM github_deployments WHERE release_id = ?", (release_id,))
    return int(row["deployment_id"]) if row else None


def save_github_deployment(
    store: Store, release_id: int, *, repo: str, service: str, env: str, deployment_id: int, now: datetime
) -> None:
    store.sql.execute(
        "INSERT INTO github_deployments (release_id, repo, service, env, deployment_id, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (release_id) DO NOTHING",
        (release_id, repo, service, env, deployment_id, rows.ts(now)),
    )


def github_replaced(store: Store, release_id: int) -> list[tuple[int, str, int]]:
    """(release id, repo, deployment id) of the active deployments of the same service and environment that a
    successful ``release_id`` replaces."""
    found = store.sql.query(
        "SELECT g.release_id, g.repo, g.deployment_id FROM github_deployments g "
        "JOIN github_deployments mine ON mine.release_id = ? "
        "WHERE g.active = 1 AND g.service = mine.service AND g.env = mine.env AND g.release_id != ? "
        "ORDER BY g.release_id",
        (release_id, release_id),
    )
    return [(r["release_id"], r["repo"], r["deployment_id"]) for r in found]


def set_github_active(store: Store, release_id: int, active: bool) -> None:
    store.sql.execute("UPDATE github_deployments SET active = ? WHERE release_id = ?", (int(active), release_id))


class EventStore:
    """The events API of Store: record an event, read them back in order (``GET /api/v1/events``)."""

    sql: Sql
    # Set by the bootstrap from the config (bot.events.targets): which targets get a delivery of which events.
    event_targets: tuple[EventTarget, ...] = ()
    # Called on the store thread after an event with deliveries was written (the worker's wake-up).
    event_hook: Callable[[], None] | None = None

    def emit_event(self, type_: str, subject: str, data: dict[str, Any], now: datetime) -> int:
        """``record_event`` in a transaction of its own: for a caller outside a store unit (alerts, trains)."""
        return record_event(cast("Store", self), type_, subject, data, now)

    def events_since(self, since: int, limit: int) -> list[StoredEvent]:
        """Events after sequence number ``since``, oldest first, at most ``limit``."""
        instance = _instance(self.sql)
        found = self.sql.query("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (since, limit))
        return [_event(row, instance) for row in found]

    def event_replay(self, since: int, limit: int) -> Replay:
        """``events_since``, and whether events after ``since`` were pruned (the replay has a gap)."""
        # Events first, then the mark: a prune in between can only make the answer say truncated when it was
        # not, never hide a gap (and no write lock is taken for a read).
        found = self.events_since(since, limit)
        row = self.sql.one("SELECT pruned_through FROM event_source WHERE id = 1")
        return Replay(found, truncated=row is not None and since < int(row["pruned_through"]))
