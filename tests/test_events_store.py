"""Events are a transactional outbox: written with the change they describe, or not at all (real SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config.events import EVENT_TYPES, PREFIX
from bot.core.models import ApprovalKind, ApprovalState, ReleaseKind, ReleaseState
from bot.store import Store
from bot.store.events import (
    GITHUB,
    EventTarget,
    delivery_dead,
    delivery_sent,
    drop_unconfigured,
    pending_by_target,
    prune_events,
    record_event,
    take_delivery,
)

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
HOOK = "https://hooks.example/releases"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    found = Store(tmp_path / "events.db")
    found.event_targets = (
        EventTarget(HOOK, (PREFIX + "release.*", PREFIX + "check.verdict")),
        EventTarget(GITHUB, (PREFIX + "release.*",), frozenset({"notify"})),
    )
    return found


def deliveries(store: Store) -> list[tuple[int, str]]:
    return [(r["event_id"], r["target"]) for r in store.sql.query("SELECT * FROM deliveries ORDER BY event_id, target")]


def release(store: Store, service: str = "notify") -> int:
    store.put_candidate(
        service=service, version="1.2.3", commit="a" * 40, committed_at=None, components={}, tests={}, now=NOW
    )
    return store.create_release(
        service=service,
        env="prod",
        version="1.2.3",
        kind=ReleaseKind.DEPLOY,
        state=ReleaseState.QUEUED,
        requested_by="U01RELEASE",
        now=NOW,
        take_lock=True,
    ).id


def test_every_state_change_is_an_event_with_its_deliveries(store: Store) -> None:
    rid = release(store)
    store.transition(rid, ReleaseState.DEPLOYING, actor="release-bot", detail="deploying", now=NOW)
    store.transition(rid, ReleaseState.SUCCEEDED, actor="release-bot", detail="done", now=NOW + timedelta(minutes=1))

    events = store.events_since(0, 100)
    assert [e.type for e in events] == [
        PREFIX + "release.queued",
        PREFIX + "release.deploying",
        PREFIX + "release.succeeded",
    ]
    assert [e.seq for e in events] == [1, 2, 3]
    last = events[-1]
    assert last.subject == f"notify/prod/release/{rid}"
    assert last.data["previous_state"] == "deploying" and last.data["commit"] == "a" * 40
    assert last.data["version"] == "1.2.3" and last.data["actor"] == "release-bot"
    assert last.time == NOW + timedelta(minutes=1)
    # The id is the database's instance name and the sequence: stable, and unique across databases.
    instance = events[0].id.rpartition("-")[0]
    assert len(instance) == 12 and [e.id for e in events] == [f"{instance}-{n}" for n in (1, 2, 3)]
    assert deliveries(store) == [(n, t) for n in (1, 2, 3) for t in sorted([HOOK, GITHUB])]


def test_a_change_rolled_back_leaves_no_event_and_no_delivery(store: Store) -> None:
    rid = release(store)
    before = (store.events_since(0, 100), deliveries(store))

    with pytest.raises(RuntimeError), store.sql.transaction():
        store.transition(rid, ReleaseState.DEPLOYING, actor="release-bot", detail="deploying", now=NOW)
        raise RuntimeError("the unit failed after the transition")

    assert (store.events_since(0, 100), deliveries(store)) == before
    assert store.get_release(rid).state is ReleaseState.QUEUED  # type: ignore[union-attr]


def test_a_lost_race_is_no_event(store: Store) -> None:
    rid = release(store)
    assert (
        store.transition(rid, ReleaseState.FAILED, actor="x", detail="", now=NOW, only_from={ReleaseState.DEPLOYING})
        is None
    )
    assert len(store.events_since(0, 100)) == 1


def test_targets_take_only_their_types_and_services(store: Store) -> None:
    rid = release(store, "billing")  # not a GitHub service
    store.emit_event("train.departed", "prod/train/1", {"env": "prod"}, NOW)

    assert deliveries(store) == [(1, HOOK)]  # the release event, to the webhook only; the train event nowhere
    assert [e.type for e in store.events_since(0, 10)] == [PREFIX + "release.queued", PREFIX + "train.departed"]
    assert rid


def test_an_unknown_type_is_refused_and_stores_nothing(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown event type 'train.derailed'"):
        record_event(store, "train.derailed", "prod/train/1", {}, NOW)
    assert store.events_since(0, 10) == [] and deliveries(store) == []


def test_approvals_and_check_verdicts_are_events(store: Store) -> None:
    rid = release(store)
    approval = store.create_approval(
        kind=ApprovalKind.RELEASE,
        service="notify",
        env="prod",
        requester="U01RELEASE",
        required=2,
        eligible_groups=["oncall"],
        subject={"release_id": rid},
        now=NOW,
        expires_at=NOW + timedelta(minutes=30),
    )
    store.vote(approval.id, "U01ONCALL1", NOW)
    store.vote(approval.id, "U01ONCALL1", NOW)  # a duplicate vote is no event
    store.vote(approval.id, "U01ONCALL2", NOW)
    other = store.create_approval(
        kind=ApprovalKind.FORCE,
        service="notify",
        env="prod",
        requester="U01RELEASE",
        required=1,
        eligible_groups=[],
        subject={"release_id": rid},
        now=NOW,
        expires_at=NOW + timedelta(minutes=30),
    )
    assert store.close_approval(other.id, ApprovalState.DENIED, by="U01ONCALL1", reason="not now", now=NOW)
    assert not store.close_approval(other.id, ApprovalState.EXPIRED, by=None, reason=None, now=NOW)  # decided: none
    store.schedule_measurements(rid, [("error_rate", 300, NOW)])
    store.record_measurement(
        rid, "error_rate", 300, verdict="pass", value=0.01, summary="1% errors", query="q", now=NOW
    )

    events = store.events_since(1, 100)
    assert [e.type.removeprefix(PREFIX) for e in events] == [
        "approval.requested",
        "approval.voted",
        "approval.voted",
        "approval.approved",
        "approval.requested",
        "approval.denied",
        "check.verdict",
    ]
    assert events[2].data["voter"] == "U01ONCALL2" and events[2].data["votes"] == 2
    assert events[5].data["reason"] == "not now" and events[5].data["release_id"] == rid
    assert events[6].data == {
        "release_id": rid,
        "service": "notify",
        "env": "prod",
        "version": "1.2.3",
        "check": "error_rate",
        "offset_s": 300,
        "verdict": "pass",
        "value": 0.01,
        "summary": "1% errors",
    }
    # Only the check verdict matches a target's types (approvals go to no configured target here).
    assert [t for n, t in deliveries(store) if n == events[6].seq] == [HOOK]


def test_every_known_type_can_be_recorded(store: Store) -> None:
    for n, type_ in enumerate(EVENT_TYPES):
        record_event(store, type_, f"s/{n}", {"n": n}, NOW)
    assert [e.type for e in store.events_since(0, 1000)] == list(EVENT_TYPES)


def test_a_delivery_is_taken_in_event_order_and_marked_in_doubt_before_it_leaves(store: Store) -> None:
    release(store)
    store.emit_event("release.deploying", "x", {"service": "notify"}, NOW)
    first = take_delivery(store, HOOK)
    assert first is not None and first.event.seq == 1 and first.attempts == 0 and not first.in_doubt
    row = store.sql.one("SELECT attempts, in_doubt FROM deliveries WHERE event_id = 1 AND target = ?", (HOOK,))
    assert row == {"attempts": 1, "in_doubt": 1}
    again = take_delivery(store, HOOK)  # not recorded as sent: the head is still the head, now in doubt
    assert again is not None and again.event.seq == 1 and again.attempts == 1 and again.in_doubt


def test_alerts_and_train_departures_are_events_in_their_own_transactions(store: Store) -> None:
    from bot.alerts_models import CheckedAlert
    from bot.core.trains import DepartureState

    store.event_targets = (EventTarget(HOOK, (PREFIX + "alert.*", PREFIX + "train.*")),)
    firing = CheckedAlert("fp1", NOW, None, True, "notify", "prod", "HighErrorRate", "errors above 5%")
    store.ingest_alerts([firing, firing], {"prod": timedelta(minutes=30)}, NOW)  # a repeat is no second event
    resolved = CheckedAlert("fp1", NOW, NOW + timedelta(minutes=4), False, "notify", "prod", "HighErrorRate", "")
    store.ingest_alerts([resolved], {"prod": timedelta(minutes=30)}, NOW + timedelta(minutes=5))

    departure = store.add_departure(env="prod", at=NOW, boards_at=NOW - timedelta(minutes=15), now=NOW)
    assert store.move_departure(departure.id, frm=DepartureState.PENDING, to=DepartureState.BOARDING, now=NOW)
    assert store.move_departure(departure.id, frm=DepartureState.BOARDING, to=DepartureState.HELD, now=NOW,
                                reason="migration running", held_by="U01LEADLEAD")  # fmt: skip
    # A lost race moves nothing and tells nobody.
    assert not store.move_departure(departure.id, frm=DepartureState.BOARDING, to=DepartureState.DEPARTED, now=NOW)
    later = store.add_departure(env="prod", at=NOW + timedelta(days=1), boards_at=NOW, now=NOW)
    assert store.move_departure(later.id, frm=DepartureState.PENDING, to=DepartureState.CANCELLED, now=NOW,
                                reason="the train's timetable changed")  # fmt: skip

    events = store.events_since(0, 100)
    assert [e.type.removeprefix(PREFIX) for e in events] == [
        "alert.firing",
        "alert.resolved",
        "train.held",
        "train.cancelled",
    ]
    assert events[0].data["service"] == "notify" and events[0].data["name"] == "HighErrorRate"
    assert events[1].data["status"] == "resolved" and events[1].subject == "notify/prod/alert/fp1"
    assert events[2].data == {
        "departure_id": departure.id,
        "env": "prod",
        "at": events[2].data["at"],
        "state": "held",
        "reason": "migration running",
        "held_by": "U01LEADLEAD",
    }
    assert deliveries(store) == [(e.seq, HOOK) for e in events]


def test_old_settled_events_are_pruned_and_a_replay_from_before_them_says_it_is_truncated(store: Store) -> None:
    old = NOW - timedelta(days=40)
    store.event_targets = (EventTarget(HOOK, (PREFIX + "train.*",)),)
    for n in range(4):  # 1-4: old, with a delivery each
        store.emit_event("train.departed", f"prod/train/{n}", {"env": "prod"}, old)
    store.emit_event("alert.firing", "notify/prod/alert/x", {"service": "notify"}, old)  # 5: old, no delivery
    store.emit_event("train.departed", "prod/train/9", {"env": "prod"}, NOW)  # 6: recent
    delivery_sent(store, 1, HOOK, old)
    delivery_dead(store, 2, HOOK, "HTTP 410", old)
    delivery_sent(store, 4, HOOK, old)  # 3 is still pending: it must survive, whatever its age

    assert prune_events(store, NOW - timedelta(days=30)) == 4

    assert [e.seq for e in store.events_since(0, 100)] == [3, 6]
    assert deliveries(store) == [(3, HOOK), (6, HOOK)]  # the pruned events' deliveries went with them
    # A replay from before a pruned event is incomplete; from the last pruned one on, it is whole.
    assert [(since, store.event_replay(since, 100).truncated) for since in (0, 2, 3, 4, 5, 6)] == [
        (0, True),
        (2, True),
        (3, True),
        (4, True),
        (5, False),
        (6, False),
    ]
    assert [e.seq for e in store.event_replay(0, 100).events] == [3, 6]
    assert prune_events(store, NOW - timedelta(days=30)) == 0  # nothing more is old and settled

    # Once 3 is delivered and 6 is old too, everything goes; numbering goes on, a gap stays a gap.
    delivery_sent(store, 3, HOOK, NOW)
    delivery_sent(store, 6, HOOK, NOW)
    assert prune_events(store, NOW + timedelta(days=1)) == 2
    assert store.events_since(0, 100) == [] and deliveries(store) == []
    assert store.event_replay(5, 100).truncated and not store.event_replay(6, 100).truncated
    assert store.emit_event("train.departed", "prod/train/10", {"env": "prod"}, NOW) == 7
    assert store.event_replay(6, 100).events[0].seq == 7 and not store.event_replay(6, 100).truncated


def test_nothing_pruned_means_no_replay_is_truncated(store: Store) -> None:
    release(store)
    assert prune_events(store, NOW - timedelta(days=30)) == 0
    replay = store.event_replay(0, 100)
    assert not replay.truncated and [e.seq for e in replay.events] == [1]


def test_rows_of_removed_targets_are_given_up_per_target_even_when_none_is_left(store: Store) -> None:
    release(store)
    store.emit_event("release.deploying", "x", {"service": "notify"}, NOW)
    assert [(p.target, p.count) for p in pending_by_target(store)] == [(GITHUB, 2), (HOOK, 2)]

    assert drop_unconfigured(store, [GITHUB], NOW) == {HOOK: 2}
    assert drop_unconfigured(store, [], NOW) == {GITHUB: 2}  # no target configured at all: every row goes
    assert pending_by_target(store) == []
    dead = store.sql.query("SELECT DISTINCT state, last_error FROM deliveries")
    assert dead == [{"state": "dead", "last_error": "target no longer configured"}]
