"""The train rows in real SQLite: one departure per train and instant, each transition claimed once, and a
version of a service boards an environment once while its release is on its way or shipped (the guard and the
unique index behind it); one whose release did not ship boards again."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.models import ReleaseKind, ReleaseState
from bot.core.trains import BoardingState, DepartureState
from bot.store import Store

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
AT = NOW + timedelta(hours=4)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "releasebot.db")


def test_a_departure_is_stored_once_per_train_and_instant(store: Store) -> None:
    first = store.add_departure(env="prod", at=AT, boards_at=AT - timedelta(minutes=15), now=NOW)
    again = store.add_departure(env="prod", at=AT, boards_at=AT - timedelta(minutes=5), now=NOW + timedelta(hours=1))
    assert again == first and first.state == DepartureState.PENDING
    assert store.add_departure(env="staging", at=AT, boards_at=AT, now=NOW).id != first.id
    assert [d.id for d in store.departures_in([DepartureState.PENDING], "prod")] == [first.id]
    assert store.last_departure("prod") == first


def test_each_transition_is_claimed_by_one_caller_and_settles_with_a_time(store: Store) -> None:
    dep = store.add_departure(env="prod", at=AT, boards_at=AT, now=NOW)
    for claimed in (True, False):
        assert store.move_departure(dep.id, frm=DepartureState.PENDING, to=DepartureState.BOARDING, now=NOW) is claimed
    assert store.move_departure(dep.id, frm=DepartureState.BOARDING, to=DepartureState.HELD, now=AT, reason="x")
    assert not store.move_departure(dep.id, frm=DepartureState.BOARDING, to=DepartureState.DEPARTED, now=AT)
    found = store.get_departure(dep.id)
    assert found is not None and (found.state, found.reason) == (DepartureState.HELD, "x")
    assert store.train_counts(NOW, AT + timedelta(seconds=1)) == {"held": 1}
    assert store.train_counts(NOW, AT) == {}, "counted when it settled"


def test_a_version_boards_an_environment_once(store: Store) -> None:
    one = store.add_departure(env="prod", at=AT, boards_at=AT, now=NOW)
    two = store.add_departure(env="prod", at=AT + timedelta(days=1), boards_at=AT, now=NOW)
    a = store.add_boarding(departure_id=one.id, env="prod", service="notify", version="1.2.3", state="boarding")
    b = store.add_boarding(departure_id=two.id, env="prod", service="notify", version="1.2.3", state="boarding")
    assert (
        store.add_boarding(departure_id=one.id, env="prod", service="notify", version="9.9.9", state="boarding") == a
    ), "one row per departure and service: the first stays"
    assert store.move_boarding(a.id, frm=BoardingState.BOARDING, to=BoardingState.BOARDED)
    assert not store.move_boarding(b.id, frm=BoardingState.BOARDING, to=BoardingState.BOARDED)
    with pytest.raises(sqlite3.IntegrityError):  # the index holds even past the guard
        store.sql.execute("UPDATE train_boardings SET state = 'boarded' WHERE id = ?", (b.id,))
    store.settle_boarding(a.id, state=BoardingState.REFUSED, reason="checklist", release_id=None)
    assert store.move_boarding(b.id, frm=BoardingState.BOARDING, to=BoardingState.BOARDED), "refused: may board"
    assert [r.state for r in store.boardings(two.id)] == [BoardingState.BOARDED]


def test_a_boarding_call_is_remembered_once(store: Store) -> None:
    dep = store.add_departure(env="prod", at=AT, boards_at=AT, now=NOW)
    row = store.add_boarding(departure_id=dep.id, env="prod", service="notify", version="1.2.3", state="boarding")
    assert (row.channel, row.message_ts) == (None, None), "not posted yet: recovery posts it"
    assert store.set_call(row.id, channel="C1", ts="outbox:7")
    assert not store.set_call(row.id, channel="C2", ts="1700000000.000100"), "only the first post counts"
    found = store.get_boarding(row.id)
    assert found is not None and (found.channel, found.message_ts) == ("C1", "outbox:7")


def test_departures_slept_through_are_stored_missed_once(store: Store) -> None:
    slots = [(AT + timedelta(days=d), AT + timedelta(days=d, minutes=-15)) for d in range(3)]
    marked = store.add_missed(env="prod", instants=slots, reason="the bot was not running", now=NOW)
    assert [(d.at, d.state) for d in marked] == [(at, DepartureState.MISSED) for at, _ in slots]
    assert store.add_missed(env="prod", instants=slots, reason="again", now=NOW) == [], "each is reported once"
    assert store.train_counts(NOW, NOW + timedelta(seconds=1)) == {"missed": 3}
    assert {d.reason for d in store.departures_in([DepartureState.MISSED])} == {"the bot was not running"}


def test_a_cancelled_departure_is_not_the_last_and_comes_back_if_its_slot_does(store: Store) -> None:
    kept = store.add_departure(env="prod", at=AT, boards_at=AT, now=NOW)
    assert store.move_departure(kept.id, frm=DepartureState.PENDING, to=DepartureState.DEPARTED, now=AT)
    later = store.add_departure(env="prod", at=AT + timedelta(days=1), boards_at=AT, now=NOW)
    assert store.move_departure(
        later.id, frm=DepartureState.PENDING, to=DepartureState.CANCELLED, now=NOW, reason="the timetable changed"
    )
    last = store.last_departure("prod")
    assert last is not None and last.id == kept.id, "planning goes on from the last departure kept"
    again = store.add_departure(env="prod", at=later.at, boards_at=later.at - timedelta(minutes=5), now=NOW)
    assert (again.id, again.state, again.reason) == (later.id, DepartureState.PENDING, None)
    assert again.boards_at == later.at - timedelta(minutes=5)
    assert store.add_departure(env="prod", at=AT, boards_at=AT, now=NOW).state == DepartureState.DEPARTED


@pytest.mark.parametrize(
    ("release_state", "boards_again"),
    [
        (ReleaseState.AWAITING_APPROVAL, False),
        (ReleaseState.QUEUED, False),
        (ReleaseState.DEPLOYING, False),
        (ReleaseState.VERIFYING, False),
        (ReleaseState.SUCCEEDED, False),
        (ReleaseState.FAILED, True),
        (ReleaseState.ROLLED_BACK, True),
        (ReleaseState.INTERRUPTED, True),
        (ReleaseState.CANCELLED, True),
    ],
)
def test_a_version_boards_again_only_once_its_earlier_release_did_not_ship(
    store: Store, release_state: ReleaseState, boards_again: bool
) -> None:
    one = store.add_departure(env="prod", at=AT, boards_at=AT, now=NOW)
    two = store.add_departure(env="prod", at=AT + timedelta(days=1), boards_at=AT, now=NOW)
    a = store.add_boarding(departure_id=one.id, env="prod", service="notify", version="1.5.0", state="boarding")
    b = store.add_boarding(departure_id=two.id, env="prod", service="notify", version="1.5.0", state="boarding")
    assert not store.already_boarded("prod", "notify", "1.5.0")
    assert store.move_boarding(a.id, frm=BoardingState.BOARDING, to=BoardingState.BOARDED)
    assert store.already_boarded("prod", "notify", "1.5.0"), "claimed, its release not recorded yet: on its way"
    assert not store.move_boarding(b.id, frm=BoardingState.BOARDING, to=BoardingState.BOARDED)
    release = store.create_release(
        service="notify",
        env="prod",
        version="1.5.0",
        kind=ReleaseKind.PROMOTE,
        state=release_state,
        requested_by="release-bot",
        now=NOW,
        take_lock=False,
    )
    store.settle_boarding(a.id, state=BoardingState.BOARDED, reason=None, release_id=release.id)
    assert store.already_boarded("prod", "notify", "1.5.0") is not boards_again
    assert not store.already_boarded("staging", "notify", "1.5.0") and not store.already_boarded(
        "prod", "notify", "1.5.1"
    ), "the rule is per environment and version"

    assert store.move_boarding(b.id, frm=BoardingState.BOARDING, to=BoardingState.BOARDED) is boards_again
    first, second = store.get_boarding(a.id), store.get_boarding(b.id)
    assert first is not None and second is not None
    if boards_again:  # the index keeps one boarded row per version: the earlier one is history, with its release
        assert (first.state, first.release_id) == (BoardingState.SUPERSEDED, release.id)
        assert (second.state, second.release_id) == (BoardingState.BOARDED, None)
        assert store.already_boarded("prod", "notify", "1.5.0"), "the new boarding is on its way"
    else:
        assert (first.state, second.state) == (BoardingState.BOARDED, BoardingState.BOARDING), "nothing changed"


def test_only_departures_a_crash_left_unfinished_are_read_at_start(store: Store) -> None:
    def departed(at: datetime, *states: str) -> int:
        dep = store.add_departure(env="prod", at=at, boards_at=at, now=NOW)
        for i, state in enumerate(states):
            store.add_boarding(
                departure_id=dep.id, env="prod", service=f"svc{i}", version=f"1.{dep.id}.{i}", state=state
            )
        store.sql.execute("UPDATE train_departures SET state = ? WHERE id = ?", (DepartureState.DEPARTED, dep.id))
        return dep.id

    settled = departed(AT, BoardingState.REFUSED, BoardingState.LEFT_OFF)
    never_claimed = departed(AT + timedelta(days=1), BoardingState.REFUSED, BoardingState.BOARDING)
    no_release = departed(AT + timedelta(days=2), BoardingState.BOARDED)  # claimed; its release never recorded
    store.add_departure(env="prod", at=AT + timedelta(days=3), boards_at=AT, now=NOW)  # pending: not departed
    assert [d.id for d in store.unsettled_departures()] == [never_claimed, no_release]
    assert settled not in [d.id for d in store.unsettled_departures()]
