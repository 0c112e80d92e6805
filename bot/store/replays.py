"""Slack requests already seen: a replayed or redelivered request is acked and does nothing.

Slack's signature binds a body to a timestamp and is refused more than five minutes either side of now,
so inside that window the same bytes are a valid request again. The edge (bot/server.py, Socket Mode in
bot/wiring.py) claims each request's keys here before dispatching; a key seen before means a replay.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.store.db import Sql

# A signature is accepted from 5 minutes before its timestamp to 5 minutes after, a 10-minute span; keys
# are kept a little longer so a wall-clock step cannot let a still-valid replay through after the prune.
KEEP_SECONDS = 15 * 60
PRUNE_EVERY_SECONDS = 60.0


class ReplayStore:
    sql: Sql
    _requests_pruned_at: float = 0.0

    def prune_due(self, now: float) -> bool:
        """Whether the next claim made here would prune old keys first."""
        return now - self._requests_pruned_at >= PRUNE_EVERY_SECONDS

    def claim_request(self, keys: Sequence[str], now: float, *, prune: bool = True) -> bool:
        """True when none of ``keys`` was seen before: claim them all in one statement.

        One INSERT OR IGNORE over every key: two identical requests racing each other cannot both insert
        all their keys, and a request sharing any one key with an earlier one (same signature, or the same
        trigger_id / event_id / envelope_id under a fresh signature) inserts fewer rows than it has keys.
        ``now`` is wall-clock epoch seconds, the clock Slack's signature window is checked against.
        ``prune=False`` leaves old keys for a later claim to forget (AsyncStore.claim_now: no bulk delete on
        the event loop).
        """
        unique = list(dict.fromkeys(keys))
        if not unique:
            return True
        if prune and self.prune_due(now):
            self.prune_requests(now - KEEP_SECONDS)
            self._requests_pruned_at = now
        placeholders = ", ".join("(?, ?)" for _ in unique)
        params: list[object] = []
        for key in unique:
            params += [key, now]
        # Only "(?, ?)" groups are formatted in; every value is bound.
        sql = f"INSERT OR IGNORE INTO seen_requests (key, seen_at) VALUES {placeholders}"  # noqa: S608
        inserted = self.sql.execute(sql, tuple(params)).rowcount
        return inserted == len(unique)

    def prune_requests(self, before: float) -> int:
        """Forget keys seen before ``before``: a request that old fails its signature check anyway."""
        return self.sql.execute("DELETE FROM seen_requests WHERE seen_at < ?", (before,)).rowcount
