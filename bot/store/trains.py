"""Release trains: a row per departure and a row per service on it (bot/engine/trains.py decides)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from bot.core.models import ReleaseState
from bot.core.trains import Boarding, BoardingState, DepartureState, TrainDeparture
from bot.store import rows
from bot.store.db import Sql
from bot.store.events import departure_event

if TYPE_CHECKING:
    from bot.store import Store

OPEN_DEPARTURES = (DepartureState.PENDING, DepartureState.BOARDING)
# The settled states told to outbound events' subscribers (train.departed, .held, .missed, .cancelled).
EVENTFUL_DEPARTURES = (
    DepartureState.DEPARTED,
    DepartureState.HELD,
    DepartureState.MISSED,
    DepartureState.CANCELLED,
)

# "One version of a service boards an environment once" holds while the boarded row's release is on its way or
# shipped it: waiting for approval, queued, deploying, verifying or succeeded (or not recorded yet: claimed an
# instant ago, or a crash that recovery settles). A release that did not ship (failed, rolled back, interrupted,
# cancelled) lets the version board again, or a version whose prod approval expired would never reach prod.
ON_ITS_WAY = tuple(
    state.value
    for state in (
        ReleaseState.AWAITING_APPROVAL,
        ReleaseState.QUEUED,
        ReleaseState.DEPLOYING,
        ReleaseState.VERIFYING,
        ReleaseState.SUCCEEDED,
    )
)
_BOARDED = (
    "SELECT 1 FROM train_boardings b LEFT JOIN releases r ON r.id = b.release_id "  # noqa: S608 - placeholders only
    "WHERE b.env = ? AND b.service = ? AND b.version = ? AND b.state = ? "
    f"AND (b.release_id IS NULL OR r.state IN ({', '.join('?' for _ in ON_ITS_WAY)})) LIMIT 1"
)


def _departure(row: Any) -> TrainDeparture:
    return TrainDeparture(
        id=row["id"],
        env=row["env"],
        at=rows.need_dt(row["at"]),
        boards_at=rows.need_dt(row["boards_at"]),
        state=row["state"],
        created_at=rows.need_dt(row["created_at"]),
        reason=row["reason"],
        held_by=row["held_by"],
    )


def _boarding(row: Any) -> Boarding:
    ok = row["checklist_ok"]
    return Boarding(
        id=row["id"],
        departure_id=row["departure_id"],
        env=row["env"],
        service=row["service"],
        version=row["version"],
        state=row["state"],
        reason=row["reason"],
        by=row["by"],
        release_id=row["release_id"],
        checklist_ok=None if ok is None else bool(ok),
        notes=row["notes"],
        channel=row["channel"],
        message_ts=row["message_ts"],
    )


class TrainStore:
    sql: Sql

    def add_departure(self, *, env: str, at: datetime, boards_at: datetime, now: datetime) -> TrainDeparture:
        """The departure of ``env``'s train at ``at``: stored pending, or the row already there (never two). A row
        cancelled before its boarding call (the timetable changed, then changed back) is pending again."""
        self.sql.execute(
            "INSERT INTO train_departures (env, at, boards_at, state, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (env, at) DO UPDATE SET state = excluded.state, boards_at = excluded.boards_at, "
            "reason = NULL, settled_at = NULL WHERE train_departures.state = ? AND NOT EXISTS "
            "(SELECT 1 FROM train_boardings b WHERE b.departure_id = train_departures.id)",
            (env, rows.ts(at), rows.ts(boards_at), DepartureState.PENDING, rows.ts(now), DepartureState.CANCELLED),
        )
        row = self.sql.one("SELECT * FROM train_departures WHERE env = ? AND at = ?", (env, rows.ts(at)))
        assert row is not None
        return _departure(row)

    def get_departure(self, departure_id: int) -> TrainDeparture | None:
        row = self.sql.one("SELECT * FROM train_departures WHERE id = ?", (departure_id,))
        return None if row is None else _departure(row)

    def departures_in(self, states: list[str], env: str | None = None) -> list[TrainDeparture]:
        """The departures in ``states`` (of ``env``'s train, or every train), soonest first."""
        marks = ", ".join("?" for _ in states)
        sql = f"SELECT * FROM train_departures WHERE state IN ({marks})"  # noqa: S608 - placeholders only
        params: list[Any] = list(states)
        if env is not None:
            sql += " AND env = ?"
            params.append(env)
        return [_departure(row) for row in self.sql.query(sql + " ORDER BY at, id", tuple(params))]

    def unsettled_departures(self) -> list[TrainDeparture]:
        """Departed departures a crash left unfinished: a row claimed without its release recorded, or never
        claimed. One query at start, whatever the number of departures in the history."""
        found = self.sql.query(
            "SELECT * FROM train_departures d WHERE d.state = ? AND EXISTS (SELECT 1 FROM train_boardings b "
            "WHERE b.departure_id = d.id AND (b.state = ? OR (b.state = ? AND b.release_id IS NULL))) "
            "ORDER BY d.at, d.id",
            (DepartureState.DEPARTED, BoardingState.BOARDING, BoardingState.BOARDED),
        )
        return [_departure(row) for row in found]

    def last_departure(self, env: str) -> TrainDeparture | None:
        """The latest stored departure of ``env``'s train that was kept (any state but cancelled: a cancelled one
        belonged to a timetable that is gone, and the next is planned from the current one)."""
        row = self.sql.one(
            "SELECT * FROM train_departures WHERE env = ? AND state != ? ORDER BY at DESC, id DESC LIMIT 1",
            (env, DepartureState.CANCELLED),
        )
        return None if row is None else _departure(row)

    def move_departure(
        self,
        departure_id: int,
        *,
        frm: str,
        to: str,
        now: datetime,
        reason: str | None = None,
        held_by: str | None = None,
    ) -> bool:
        """Move a departure from state ``frm`` to ``to``: True only for the one caller that did. A departure that
        departed, was held or was missed records its outbound event in the same transaction."""
        settled = None if to in OPEN_DEPARTURES else rows.ts(now)
        with self.sql.transaction():
            moved = bool(
                self.sql.execute(
                    "UPDATE train_departures SET state = ?, reason = coalesce(?, reason), "
                    "held_by = coalesce(?, held_by), settled_at = coalesce(?, settled_at) WHERE id = ? AND state = ?",
                    (to, reason, held_by, settled, departure_id, frm),
                ).rowcount
            )
            if moved and to in EVENTFUL_DEPARTURES:
                departure_event(cast("Store", self), departure_id, to, now)
        return moved

    def add_missed(
        self, *, env: str, instants: list[tuple[datetime, datetime]], reason: str, now: datetime
    ) -> list[TrainDeparture]:
        """Departures (``(at, boards_at)``) the bot slept through, stored missed in one transaction; those already
        stored are left as they are. Returns the ones this call marked, so each is reported once."""
        marked = []
        with self.sql.transaction():
            for at, boards in instants:
                dep = self.add_departure(env=env, at=at, boards_at=boards, now=now)
                if dep.state == DepartureState.PENDING and self.move_departure(
                    dep.id, frm=DepartureState.PENDING, to=DepartureState.MISSED, now=now, reason=reason
                ):
                    marked.append(replace(dep, state=DepartureState.MISSED, reason=reason))
        return marked

    def add_boarding(
        self,
        *,
        departure_id: int,
        env: str,
        service: str,
        version: str | None,
        state: str,
        reason: str | None = None,
        checklist_ok: bool | None = None,
        notes: str | None = None,
    ) -> Boarding:
        """One service's row on a departure (the first one written stays: a second call returns it)."""
        self.sql.execute(
            "INSERT OR IGNORE INTO train_boardings (departure_id, env, service, version, state, reason, checklist_ok, "
            "notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                departure_id,
                env,
                service,
                version,
                state,
                reason,
                None if checklist_ok is None else int(checklist_ok),
                notes,
            ),
        )
        row = self.sql.one(
            "SELECT * FROM train_boardings WHERE departure_id = ? AND service = ?", (departure_id, service)
        )
        assert row is not None
        return _boarding(row)

    def boardings(self, departure_id: int) -> list[Boarding]:
        """The services of one departure, in the order they were announced."""
        return [
            _boarding(row)
            for row in self.sql.query(
                "SELECT * FROM train_boardings WHERE departure_id = ? ORDER BY id", (departure_id,)
            )
        ]

    def set_call(self, boarding_id: int, *, channel: str, ts: str) -> bool:
        """Remember where a row's boarding call was posted; only the first post counts (True for it)."""
        return bool(
            self.sql.execute(
                "UPDATE train_boardings SET channel = ?, message_ts = ? WHERE id = ? AND message_ts IS NULL",
                (channel, ts, boarding_id),
            ).rowcount
        )

    def get_boarding(self, boarding_id: int) -> Boarding | None:
        row = self.sql.one("SELECT * FROM train_boardings WHERE id = ?", (boarding_id,))
        return None if row is None else _boarding(row)

    def already_boarded(self, env: str, service: str, version: str) -> bool:
        """Did ``version`` of ``service`` board a departure to ``env`` whose release is on its way or shipped it
        (:data:`ON_ITS_WAY`)? Then it does not board again: the boarding call skips it quietly and the departure's
        claim (:meth:`move_boarding`) refuses it, by this one rule."""
        return self.sql.one(_BOARDED, (env, service, version, BoardingState.BOARDED, *ON_ITS_WAY)) is not None

    def move_boarding(
        self, boarding_id: int, *, frm: str, to: str, reason: str | None = None, by: str | None = None
    ) -> bool:
        """Move a service's row from ``frm`` to ``to``: True only for the one caller that did. Boarding is refused
        while the same version of the service :meth:`already_boarded` the environment (nothing boards twice; the
        unique index backs this). An earlier boarded row of that version whose release did not ship becomes
        ``superseded`` in the same transaction: the index keeps one boarded row per version, the new one."""
        if to != BoardingState.BOARDED:
            return bool(
                self.sql.execute(
                    "UPDATE train_boardings SET state = ?, reason = coalesce(?, reason), by = coalesce(?, by) "
                    "WHERE id = ? AND state = ?",
                    (to, reason, by, boarding_id, frm),
                ).rowcount
            )
        with self.sql.transaction():
            row = self.sql.one(
                "SELECT env, service, version FROM train_boardings WHERE id = ? AND state = ?", (boarding_id, frm)
            )
            if row is None or row["version"] is None:
                return False
            if self.already_boarded(row["env"], row["service"], row["version"]):
                return False
            self.sql.execute(
                "UPDATE train_boardings SET state = ? WHERE env = ? AND service = ? AND version = ? AND state = ?",
                (BoardingState.SUPERSEDED, row["env"], row["service"], row["version"], BoardingState.BOARDED),
            )
            return bool(
                self.sql.execute(
                    "UPDATE train_boardings SET state = ?, reason = coalesce(?, reason), by = coalesce(?, by) "
                    "WHERE id = ? AND state = ?",
                    (to, reason, by, boarding_id, frm),
                ).rowcount
            )

    def settle_boarding(self, boarding_id: int, *, state: str, reason: str | None, release_id: int | None) -> None:
        """A boarded service's outcome: its release, or refused with the reason."""
        self.sql.execute(
            "UPDATE train_boardings SET state = ?, reason = ?, release_id = ? WHERE id = ? AND state = ?",
            (state, reason, release_id, boarding_id, BoardingState.BOARDED),
        )

    def train_counts(self, since: datetime, until: datetime) -> dict[str, int]:
        """Departures settled in [since, until) by final state (departed, held, missed, closed)."""
        found = self.sql.query(
            "SELECT state, count(*) AS n FROM train_departures WHERE settled_at >= ? AND settled_at < ? GROUP BY state",
            (rows.ts(since), rows.ts(until)),
        )
        return {str(row["state"]): int(row["n"]) for row in found}
