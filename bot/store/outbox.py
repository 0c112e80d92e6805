"""The Slack outbox: messages waiting to be delivered, in order per lane, and what became of them.

A row is written before Slack is asked, so nothing is lost to an outage, a rate limit or a restart.
``bot.slack.outbox`` drains it; these are the synchronous store operations it runs on the store thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot.store import rows
from bot.store.db import Sql

OutboxKind = Literal["post", "update", "ephemeral", "publish_home", "upload"]
PLACEHOLDER_PREFIX = "outbox:"


def placeholder(row_id: int) -> str:
    """The stand-in ts handed out for a message Slack has not posted yet."""
    return f"{PLACEHOLDER_PREFIX}{row_id}"


def placeholder_id(ts: str | None) -> int | None:
    """The outbox row id behind a placeholder ts, or None for a real Slack ts."""
    if ts is None or not ts.startswith(PLACEHOLDER_PREFIX):
        return None
    digits = ts.removeprefix(PLACEHOLDER_PREFIX)
    return int(digits) if digits.isdigit() else None


@dataclass(frozen=True)
class OutboxRow:
    """One message (or edit, or view) on its way to Slack."""

    id: int
    lane: str
    channel: str | None
    kind: OutboxKind
    payload: dict[str, Any]
    thread_ref: int | None
    message_ref: int | None
    state: str
    attempts: int
    in_doubt: bool
    next_attempt_at: datetime | None
    sent_ts: str | None
    created_at: datetime
    last_error: str | None


def _row(row: dict[str, Any]) -> OutboxRow:
    return OutboxRow(
        id=row["id"],
        lane=row["lane"],
        channel=row["channel"],
        kind=row["kind"],
        payload=json.loads(row["payload"]),
        thread_ref=row["thread_ref"],
        message_ref=row["message_ref"],
        state=row["state"],
        attempts=row["attempts"],
        in_doubt=bool(row["in_doubt"]),
        next_attempt_at=rows.dt(row["next_attempt_at"]),
        sent_ts=row["sent_ts"],
        created_at=rows.need_dt(row["created_at"]),
        last_error=row["last_error"],
    )


# Where a message's ts is remembered, and so may hold a placeholder handed out while Slack was unreachable.
PLACEHOLDER_COLUMNS = (
    ("releases", "thread_ts"),
    ("approvals", "message_ts"),
    ("incidents", "ts"),
    ("incidents", "thread_ts"),
    ("train_boardings", "message_ts"),
)


class OutboxStore:
    sql: Sql

    def outbox_enqueue(
        self,
        *,
        lane: str,
        channel: str | None,
        kind: OutboxKind,
        payload: dict[str, Any],
        now: datetime,
        thread_ref: int | None = None,
        message_ref: int | None = None,
        coalesce_key: str | None = None,
    ) -> tuple[int, list[int]]:
        """Queue a row; returns its id and the ids of older pending rows it superseded (same coalesce key)."""
        with self.sql.transaction():
            superseded: list[int] = []
            if coalesce_key is not None:
                found = self.sql.query(
                    "SELECT id FROM outbox WHERE coalesce_key = ? AND state = 'pending'", (coalesce_key,)
                )
                superseded = [r["id"] for r in found]
                self.sql.execute(
                    "UPDATE outbox SET state = 'superseded' WHERE coalesce_key = ? AND state = 'pending'",
                    (coalesce_key,),
                )
            cursor = self.sql.execute(
                "INSERT INTO outbox (lane, channel, kind, payload, thread_ref, message_ref, coalesce_key, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    lane,
                    channel,
                    kind,
                    json.dumps(payload, ensure_ascii=False),
                    thread_ref,
                    message_ref,
                    coalesce_key,
                    rows.ts(now),
                ),
            )
            return int(cursor.lastrowid or 0), superseded

    def outbox_row(self, row_id: int) -> OutboxRow | None:
        found = self.sql.one("SELECT * FROM outbox WHERE id = ?", (row_id,))
        return _row(found) if found else None

    def outbox_next(self, lane: str) -> OutboxRow | None:
        """The oldest pending row of ``lane``: the only one that may be sent next."""
        found = self.sql.one("SELECT * FROM outbox WHERE lane = ? AND state = 'pending' ORDER BY id LIMIT 1", (lane,))
        return _row(found) if found else None

    def outbox_lanes(self) -> list[str]:
        """Lanes with rows still to deliver (on start, each gets a worker)."""
        return [r["lane"] for r in self.sql.query("SELECT DISTINCT lane FROM outbox WHERE state = 'pending'")]

    def outbox_counts(self) -> dict[str, int]:
        """Rows per state, e.g. ``{"pending": 3, "sent": 120}``."""
        found = self.sql.query("SELECT state, count(*) AS n FROM outbox GROUP BY state")
        return {r["state"]: int(r["n"]) for r in found}

    def outbox_begin_attempt(self, row_id: int, *, in_doubt: bool) -> None:
        """Count an attempt; ``in_doubt`` is set before a post leaves, so a crash mid-request is remembered."""
        self.sql.execute(
            "UPDATE outbox SET attempts = attempts + 1, in_doubt = ? WHERE id = ?",
            (int(in_doubt), row_id),
        )

    def outbox_retry(self, row_id: int, *, next_attempt_at: datetime, error: str, in_doubt: bool) -> None:
        """Leave the row pending for another attempt (a row superseded meanwhile stays superseded)."""
        self.sql.execute(
            "UPDATE outbox SET next_attempt_at = ?, last_error = ?, in_doubt = ? WHERE id = ? AND state = 'pending'",
            (rows.ts(next_attempt_at), error[:500], int(in_doubt), row_id),
        )

    def outbox_sent(self, row_id: int, ts: str | None, now: datetime, note: str | None = None) -> None:
        """Delivered; a placeholder handed out for it is swapped for the real ts where it was stored."""
        with self.sql.transaction():
            self.sql.execute(
                "UPDATE outbox SET state = 'sent', sent_ts = ?, sent_at = ?, in_doubt = 0, last_error = ? WHERE id = ?",
                (ts, rows.ts(now), note, row_id),
            )
            handed = self.sql.one("SELECT handed_out FROM outbox WHERE id = ?", (row_id,))
            if ts is not None and handed and handed["handed_out"]:
                self.outbox_resolve_placeholders()

    def outbox_dead(self, row_id: int, error: str, now: datetime) -> None:
        """Given up on: kept (with the reason) for the record, never sent."""
        self.sql.execute(
            "UPDATE outbox SET state = 'dead', sent_at = ?, last_error = ? WHERE id = ?",
            (rows.ts(now), error[:500], row_id),
        )

    def outbox_hand_out(self, row_id: int) -> str | None:
        """Note that the row's placeholder is being handed out; its real ts instead if it was just sent."""
        with self.sql.transaction():
            self.sql.execute("UPDATE outbox SET handed_out = 1 WHERE id = ?", (row_id,))
            found = self.sql.one("SELECT state, sent_ts FROM outbox WHERE id = ?", (row_id,))
        return str(found["sent_ts"]) if found and found["state"] == "sent" and found["sent_ts"] else None

    def outbox_last_sent_ts(self, lane: str, before_id: int) -> str | None:
        """The ts of the lane's latest delivered post before ``before_id``: a later post has a later ts."""
        found = self.sql.one(
            "SELECT sent_ts FROM outbox WHERE lane = ? AND id < ? AND kind = 'post' AND state = 'sent' "
            "AND sent_ts IS NOT NULL ORDER BY id DESC LIMIT 1",
            (lane, before_id),
        )
        return str(found["sent_ts"]) if found else None

    def outbox_resolve_placeholders(self) -> int:
        """Swap placeholders stored where messages are remembered (a release's thread, an approval's request, an
        incident's message and the thread it is in, a train's boarding call) for the ts of the message once posted:
        edits name the message by its real ts from then on, so they still reach it after the outbox forgets its
        sent rows (``keep_finished_for``)."""
        changed = 0
        for table, column in PLACEHOLDER_COLUMNS:
            # Fixed table/column names; the LIKE term matches the partial indexes, so only placeholders are read.
            cursor = self.sql.execute(
                f"UPDATE {table} SET {column} = ("  # noqa: S608
                f"SELECT o.sent_ts FROM outbox o WHERE o.id = CAST(substr({table}.{column}, 8) AS INTEGER)) "
                f"WHERE {column} LIKE 'outbox:%' AND EXISTS (SELECT 1 FROM outbox o "
                f"WHERE o.id = CAST(substr({table}.{column}, 8) AS INTEGER) AND o.state = 'sent' "
                "AND o.sent_ts IS NOT NULL)"
            )
            changed += cursor.rowcount
        return changed

    def outbox_prune(self, before: datetime) -> int:
        """Forget finished rows created before ``before`` (placeholders of sent rows were swapped already)."""
        cursor = self.sql.execute(
            "DELETE FROM outbox WHERE state != 'pending' AND created_at < ?",
            (rows.ts(before),),
        )
        return cursor.rowcount
