"""Approval requests and votes. Every decision is a conditional update, so races produce one effect."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

from bot.core.models import Approval, ApprovalKind, ApprovalState
from bot.store import rows
from bot.store.db import Sql
from bot.store.events import approval_event

if TYPE_CHECKING:
    from bot.store import Store

VoteOutcome = Literal["recorded", "approved", "duplicate", "closed"]


@dataclass(frozen=True)
class VoteResult:
    outcome: VoteOutcome
    approval: Approval


class ApprovalStore:
    sql: Sql

    def create_approval(
        self,
        *,
        kind: ApprovalKind,
        service: str,
        env: str,
        requester: str,
        required: int,
        eligible_groups: list[str],
        subject: dict[str, Any],
        now: datetime,
        expires_at: datetime,
    ) -> Approval:
        with self.sql.transaction():  # the request and its outbound event (bot/store/events.py) together
            cursor = self.sql.execute(
                "INSERT INTO approvals (kind, service, env, requester, required, eligible_groups, state, created_at, "
                "expires_at, subject) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                (
                    kind.value,
                    service,
                    env,
                    requester,
                    required,
                    json.dumps(eligible_groups),
                    rows.ts(now),
                    rows.ts(expires_at),
                    json.dumps(subject, sort_keys=True),
                ),
            )
            approval_event(cast("Store", self), int(cursor.lastrowid or 0), "requested", now)
        found = self.get_approval(int(cursor.lastrowid or 0))
        assert found is not None
        return found

    def get_approval(self, approval_id: int) -> Approval | None:
        row = self.sql.one("SELECT * FROM approvals WHERE id = ?", (approval_id,))
        if row is None:
            return None
        voters = self.sql.query("SELECT user FROM approval_votes WHERE approval_id = ? ORDER BY at", (approval_id,))
        return rows.approval(row, [v["user"] for v in voters])

    def set_approval_message(self, approval_id: int, channel: str, ts: str) -> None:
        self.sql.execute("UPDATE approvals SET channel = ?, message_ts = ? WHERE id = ?", (channel, ts, approval_id))

    def vote(self, approval_id: int, user: str, now: datetime) -> VoteResult:
        """Record an approval vote; the vote that reaches ``required`` flips the state, exactly once."""
        with self.sql.transaction():
            current = self.get_approval(approval_id)
            if current is None:
                raise KeyError(approval_id)
            if current.state is not ApprovalState.PENDING or current.expires_at <= now:
                return VoteResult("closed", current)
            inserted = self.sql.execute(
                "INSERT OR IGNORE INTO approval_votes (approval_id, user, at) VALUES (?, ?, ?)",
                (approval_id, user, rows.ts(now)),
            ).rowcount
            if not inserted:
                return VoteResult("duplicate", current)
            votes = self.sql.one("SELECT count(*) AS n FROM approval_votes WHERE approval_id = ?", (approval_id,))
            outcome: VoteOutcome = "recorded"
            if votes is not None and votes["n"] >= current.required:
                changed = self.sql.execute(
                    "UPDATE approvals SET state = 'approved', decided_at = ?, decided_by = ? "
                    "WHERE id = ? AND state = 'pending'",
                    (rows.ts(now), user, approval_id),
                ).rowcount
                outcome = "approved" if changed else "closed"
            approval_event(cast("Store", self), approval_id, "voted", now, voter=user, votes=votes["n"] if votes else 0)
            if outcome == "approved":
                approval_event(cast("Store", self), approval_id, "approved", now)
        updated = self.get_approval(approval_id)
        assert updated is not None
        return VoteResult(outcome, updated)

    def close_approval(
        self, approval_id: int, to: ApprovalState, *, by: str | None, reason: str | None, now: datetime
    ) -> bool:
        """Deny, expire or cancel a pending approval; False when it was already decided."""
        with self.sql.transaction():  # the decision and its outbound event (bot/store/events.py) together
            changed = self.sql.execute(
                "UPDATE approvals SET state = ?, decided_at = ?, decided_by = ?, reason = ? "
                "WHERE id = ? AND state = 'pending'",
                (to.value, rows.ts(now), by, reason, approval_id),
            ).rowcount
            if changed:
                approval_event(cast("Store", self), approval_id, to.value, now)
        return bool(changed)

    def due_expiries(self, now: datetime) -> list[Approval]:
        found = self.sql.query(
            "SELECT id FROM approvals WHERE state = 'pending' AND expires_at <= ? ORDER BY id",
            (rows.ts(now),),
        )
        return [a for a in (self.get_approval(r["id"]) for r in found) if a is not None]

    def approvals_of_release(self, release_id: int) -> list[Approval]:
        """Every request opened for one release (a break-glass release with approvers has two)."""
        found = self.sql.query(
            "SELECT id FROM approvals WHERE json_extract(subject, '$.release_id') = ? ORDER BY id", (release_id,)
        )
        return [a for a in (self.get_approval(r["id"]) for r in found) if a is not None]

    def pending_approvals(self, service: str | None = None) -> list[Approval]:
        if service is None:
            found = self.sql.query("SELECT id FROM approvals WHERE state = 'pending' ORDER BY id")
        else:
            found = self.sql.query(
                "SELECT id FROM approvals WHERE state = 'pending' AND service = ? ORDER BY id", (service,)
            )
        return [a for a in (self.get_approval(r["id"]) for r in found) if a is not None]
