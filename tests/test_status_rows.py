"""`/release status` keeps a service's rows while nothing they come from changed (migration 0018's generation),
and shows every change — made by the bot, by another connection or by another process — at the next read."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.models import ReleaseKind, ReleaseState
from bot.store import Store

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """The writer (the store thread's connection) and the reader the event loop asks status of."""
    writer = Store(tmp_path / "bot.db")
    reader = Store(tmp_path / "bot.db", read_only=True)
    try:
        yield writer, reader
    finally:
        reader.close()
        writer.close()


def statements(store: Store) -> list[str]:
    """Every statement ``store``'s connection runs from now on."""
    ran: list[str] = []
    store.sql.db.conn.set_trace_callback(ran.append)
    return ran


def test_an_unchanged_status_is_one_single_row_read(stores: tuple[Store, Store]) -> None:
    writer, reader = stores
    writer.set_manual_lock("notify", "prod", "U01ONCALL1", "incident 42", NOW)
    first = reader.status_snapshot("notify")
    ran = statements(reader)
    assert reader.status_snapshot("notify") == first
    assert ran == ["SELECT n FROM status_generation WHERE id = 1"]
    writer.set_manual_lock("billing", "prod", "U01ONCALL1", "another service", NOW)  # any change counts
    assert reader.status_snapshot("notify") == first and len(ran) > 2  # read again: the same rows


def test_every_change_status_shows_is_seen_at_the_next_read(stores: tuple[Store, Store], tmp_path: Path) -> None:
    writer, reader = stores

    def status() -> tuple[list[tuple[str, str]], list[tuple[str, str, str]], list[str]]:
        rows = reader.status_snapshot("notify")
        return (
            [(s.env, s.version) for s in rows.states],
            [(lock.env, lock.kind, lock.reason) for lock in rows.locks],
            [f.reason for f in rows.freezes],
        )

    assert status() == ([], [], [])
    writer.put_candidate(
        service="notify", version="1.2.3", commit="a" * 40, committed_at=None, components={}, tests={}, now=NOW
    )
    release = writer.create_release(
        service="notify",
        env="prod",
        version="1.2.3",
        kind=ReleaseKind.DEPLOY,
        state=ReleaseState.QUEUED,
        requested_by="U01RELEASE",
        now=NOW,
        take_lock=True,
    )
    assert status()[1] == [("prod", "release", "release of 1.2.3 in progress")]
    writer.transition(release.id, ReleaseState.DEPLOYING, actor="bot", detail="", now=NOW)
    writer.transition(release.id, ReleaseState.SUCCEEDED, actor="bot", detail="", now=NOW)
    assert status()[:2] == ([("prod", "1.2.3")], [])  # env_state written, release lock gone
    writer.set_manual_lock("notify", "prod", "U01ONCALL1", "incident 42", NOW)
    assert status()[1] == [("prod", "manual", "incident 42")]
    writer.set_freeze("notify", "prod", NOW + timedelta(days=1), "holiday traffic", "U01ONCALL1", NOW)
    assert status()[2] == ["holiday traffic"]
    # Another process: a plain connection to the same file.
    other = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
    try:
        other.execute("UPDATE manual_locks SET reason = 'incident 43' WHERE service = 'notify'")
        assert status()[1] == [("prod", "manual", "incident 43")]
        other.execute("UPDATE adhoc_freezes SET reason = 'black friday' WHERE service = 'notify'")
        assert status()[2] == ["black friday"]
        other.execute("UPDATE env_state SET version = '1.2.4' WHERE service = 'notify'")
        assert status()[0] == [("prod", "1.2.4")]
    finally:
        other.close()
    writer.clear_manual_lock("notify", "prod")
    writer.clear_freeze("notify", "prod")
    assert status() == ([("prod", "1.2.4")], [], [])
