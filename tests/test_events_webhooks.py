"""Webhook delivery: signed CloudEvents to a real receiver (tests/fakes/webhook_receiver.py), in order, at least
once, through failures, Retry-After and a restart in the middle of a delivery, over real SQLite."""

from __future__ import annotations

import asyncio
import email.utils
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config.events import PREFIX, target_label
from bot.events.deliver import Deliveries, DeliveryPolicy
from bot.events.webhook import WebhookSender
from bot.http_session import HttpSession
from bot.observability import REGISTRY
from bot.store import AsyncStore, Store
from bot.store.events import GITHUB, EventTarget
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.harness import TUESDAY_10AM, MutableClock, running_bot

SECRET = "whsec-test"


class Waits:
    """The worker's backoff sleep: records each wait; returns at once, or holds (until wake()) while ``held``."""

    def __init__(self, *, held: bool = False) -> None:
        self.seen: list[float] = []
        self.held = held
        self.waiting = asyncio.Event()  # set at the first wait: an attempt has failed

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)
        self.waiting.set()
        if self.held:
            await asyncio.Event().wait()


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(SECRET) as receiver:
        yield receiver


@asynccontextmanager
async def worker(
    db_path: Path,
    url: str,
    waits: Waits,
    clock: MutableClock,
    *,
    secret: str = SECRET,
    types: tuple[str, ...] = ("*",),
    **policy: Any,
) -> AsyncIterator[tuple[Deliveries, AsyncStore]]:
    """A started worker with one webhook, over its own store on ``db_path`` (a restart is a second one)."""
    db = AsyncStore(Store(db_path))
    db.sync.event_targets = (EventTarget(url, types),)
    async with HttpSession() as http:
        sender = WebhookSender(url, secret.encode(), session=http, timeout=5.0, now=clock.now)
        deliveries = Deliveries(db, [sender], clock=clock, policy=DeliveryPolicy(sleep=waits, **policy))
        await deliveries.start()
        try:
            yield deliveries, db
        finally:
            await deliveries.stop()
            db.close()


async def emit(db: AsyncStore, clock: MutableClock, type_: str = "release.succeeded", n: int = 1) -> int:
    return await db.emit_event(type_, f"notify/prod/release/{n}", {"service": "notify", "n": n}, clock.now())


def states(store: Store) -> list[tuple[int, str, int, int]]:
    found = store.sql.query("SELECT event_id, state, attempts, in_doubt FROM deliveries ORDER BY event_id")
    return [(r["event_id"], r["state"], r["attempts"], r["in_doubt"]) for r in found]


async def test_events_arrive_signed_in_order_as_cloudevents(tmp_path: Path, hook: WebhookReceiver) -> None:
    clock = MutableClock(TUESDAY_10AM)
    async with worker(tmp_path / "db", hook.url, Waits(), clock) as (deliveries, db):
        for n in (1, 2, 3):
            await emit(db, clock, n=n)
        await db.emit_event("train.departed", "prod/train/1", {"env": "prod"}, clock.now())
        await deliveries.drained()

        assert hook.refused == []
        assert [e["data"].get("n") for e in hook.events] == [1, 2, 3, None]
        first = hook.events[0]
        instance = first["id"].rpartition("-")[0]
        assert first == {
            "specversion": "1.0",
            "id": f"{instance}-1",
            "source": "/release-bot",
            "type": PREFIX + "release.succeeded",
            "subject": "notify/prod/release/1",
            "time": "2026-11-24T15:00:00Z",
            "datacontenttype": "application/json",
            "releasebotseq": 1,
            "data": {"service": "notify", "n": 1},
        }
        assert hook.types()[-1] == PREFIX + "train.departed"
        assert states(db.sync) == [(n, "sent", 1, 0) for n in (1, 2, 3, 4)]


async def test_only_the_types_a_webhook_takes_are_sent(tmp_path: Path, hook: WebhookReceiver) -> None:
    clock = MutableClock(TUESDAY_10AM)
    types = (PREFIX + "release.failed", PREFIX + "approval.*")
    async with worker(tmp_path / "db", hook.url, Waits(), clock, types=types) as (deliveries, db):
        await emit(db, clock, "release.succeeded")
        await emit(db, clock, "release.failed", 2)
        await emit(db, clock, "approval.denied", 3)
        await deliveries.drained()
        assert hook.types() == [PREFIX + "release.failed", PREFIX + "approval.denied"]


async def test_a_bad_signature_is_refused_never_counted_delivered_and_kept_until_the_secrets_agree(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    clock = MutableClock(TUESDAY_10AM)
    waits = Waits(held=True)
    async with worker(tmp_path / "db", hook.url, waits, clock, secret="not-the-secret") as (deliveries, db):
        await emit(db, clock)
        await waits.waiting.wait()  # the attempt failed: the lane backs off
        # The receiver's 401 is about the secret, not the event: kept and retried, never given up at once.
        assert hook.refused == ["bad signature"] and hook.events == []
        row = db.sync.sql.one("SELECT state, attempts, last_error FROM deliveries")
        assert row == {"state": "pending", "attempts": 1, "last_error": "HTTP 401"}
        hook.secret = b"not-the-secret"  # the receiver takes the rotated secret
        waits.held = False
        deliveries.wake()
        await deliveries.drained()
        assert len(hook.events) == 1, "delivered once the secrets agree"
        assert db.sync.sql.one("SELECT state FROM deliveries") == {"state": "sent"}


def given_up_on(target: str) -> float:
    return REGISTRY.get_sample_value("releasebot_event_deliveries_given_up_total", {"target": target}) or 0.0


@pytest.mark.parametrize("status", [400, 404, 410, 413, 422])
async def test_an_event_the_receiver_refuses_is_given_up_at_once_and_the_next_goes_through(
    tmp_path: Path, hook: WebhookReceiver, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    clock = MutableClock(TUESDAY_10AM)
    waits = Waits()
    label = target_label(hook.url)  # http://127.0.0.1:<port>, without the /hook path
    before = given_up_on(label)
    hook.fail_next(status)
    caplog.set_level(logging.WARNING, logger="release_bot.events")
    async with worker(tmp_path / "db", hook.url, waits, clock) as (deliveries, db):
        first = await emit(db, clock, n=1)
        await emit(db, clock, n=2)
        await deliveries.drained()

        assert waits.seen == []  # no backoff: the next event went at once
        assert [e["data"]["n"] for e in hook.events] == [2]
        rows = db.sync.sql.query("SELECT event_id, state, attempts FROM deliveries ORDER BY event_id")
        assert rows == [
            {"event_id": 1, "state": "dead", "attempts": 1},
            {"event_id": 2, "state": "sent", "attempts": 1},
        ]
        instance = hook.events[0]["id"].rpartition("-")[0]

    assert given_up_on(label) - before == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "release_bot.events"]
    assert lines == [
        f"events: gave up on {instance}-{first} ({PREFIX}release.succeeded) to {label}: "
        f"HTTP {status}: refused by the receiver, not retried"
    ]
    assert hook.url not in caplog.text


async def test_refused_credentials_a_request_timeout_too_many_requests_and_5xx_are_retried(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    clock = MutableClock(TUESDAY_10AM)
    waits = Waits()
    for status in (401, 403, 408, 429, 500, 503):
        hook.fail_next(status)
    async with worker(tmp_path / "db", hook.url, waits, clock, backoff_base=1.0, backoff_cap=300.0) as (
        deliveries,
        db,
    ):
        await emit(db, clock, n=1)
        await emit(db, clock, n=2)
        await deliveries.drained()
        assert waits.seen == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]  # each retried with backoff, the same event every time
        assert [e["data"]["n"] for e in hook.events] == [1, 2]
        assert states(db.sync) == [(1, "sent", 7, 0), (2, "sent", 1, 0)]


async def test_a_sender_never_shows_the_url_only_its_label(tmp_path: Path) -> None:
    clock = MutableClock(TUESDAY_10AM)
    secret_url = "http://127.0.0.1:99999/hooks/T000/B000/SUPERSECRETTOKEN?token=s3cret"  # a port aiohttp refuses
    async with HttpSession() as http:
        anonymous = WebhookSender(secret_url, b"k", session=http, timeout=5.0, now=clock.now)
        named = WebhookSender(secret_url, b"k", session=http, timeout=5.0, now=clock.now, label="dashboard")
        assert repr(anonymous) == "WebhookSender('http://127.0.0.1:99999')"
        assert repr(named) == "WebhookSender('dashboard')"

        waits = Waits(held=True)
        db = AsyncStore(Store(tmp_path / "db"))
        db.sync.event_targets = (EventTarget(secret_url, ("*",)),)
        deliveries = Deliveries(db, [anonymous], clock=clock, policy=DeliveryPolicy(sleep=waits))
        await deliveries.start()
        try:
            await emit(db, clock)
            await waits.waiting.wait()  # aiohttp refused the URL (its error quotes it); the worker backs off
            row = db.sync.sql.one("SELECT state, last_error FROM deliveries")
        finally:
            await deliveries.stop()
            db.close()
    assert row is not None and row["state"] == "pending"
    assert row["last_error"] == "no answer: http://127.0.0.1:99999", row


async def test_retry_after_is_honoured_and_backoff_grows(tmp_path: Path, hook: WebhookReceiver) -> None:
    clock = MutableClock(TUESDAY_10AM)
    waits = Waits()
    http_date = email.utils.format_datetime(clock.now() + timedelta(seconds=30), usegmt=True)
    hook.fail_next(503, retry_after="7")
    hook.fail_next(429, retry_after=http_date)
    hook.fail_next(500)
    hook.fail_next(502)
    hook.fail_next(408)
    async with worker(tmp_path / "db", hook.url, waits, clock, backoff_base=1.0, backoff_cap=3.0) as (deliveries, db):
        await emit(db, clock)
        await deliveries.drained()
        # Retry-After when longer than the backoff; then 4 s of backoff capped at 3.
        assert waits.seen == [7.0, 30.0, 3.0, 3.0, 3.0]
        assert len(hook.events) == 1 and states(db.sync) == [(1, "sent", 6, 0)]


async def test_a_restart_mid_delivery_loses_nothing_and_repeats_only_the_same_id(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    clock = MutableClock(TUESDAY_10AM)
    db_path = tmp_path / "db"
    hook.hold()
    async with worker(db_path, hook.url, Waits(), clock) as (deliveries, db):
        await emit(db, clock, n=1)
        await emit(db, clock, n=2)
        await hook.arrived.wait()  # event 1 is in flight: the receiver has it, the bot has no answer yet
    # Stopped mid-request: the row is remembered as attempted and in doubt, and event 2 is untouched.
    after_stop = Store(db_path)
    assert states(after_stop) == [(1, "pending", 1, 1), (2, "pending", 0, 0)]
    after_stop.close()
    hook.release()
    await hook.settled(1)  # the receiver accepted event 1, though its answer went nowhere

    async with worker(db_path, hook.url, Waits(), clock) as (deliveries, db):  # the restarted bot
        await deliveries.drained()
        assert states(db.sync) == [(1, "sent", 2, 0), (2, "sent", 1, 0)]

    assert [e["data"]["n"] for e in hook.events] == [1, 2]  # each once, in order, after de-duplication
    delivered = [e["id"] for e in hook.deliveries]
    assert delivered == [hook.events[0]["id"], hook.events[0]["id"], hook.events[1]["id"]]  # the repeat: same id


async def test_an_event_undelivered_past_the_limit_is_given_up_and_the_lane_moves_on(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    clock = MutableClock(TUESDAY_10AM)
    waits = Waits(held=True)
    hook.down = True
    async with worker(tmp_path / "db", hook.url, waits, clock, give_up_after=timedelta(hours=24)) as (
        deliveries,
        db,
    ):
        await emit(db, clock, n=1)
        await waits.waiting.wait()
        clock.advance(hours=25)
        hook.down = False
        await emit(db, clock, n=2)
        deliveries.wake()
        waits.held = False
        await deliveries.drained()

        assert [e["data"]["n"] for e in hook.events] == [2]
        dead = db.sync.sql.one("SELECT state, last_error FROM deliveries WHERE event_id = 1")
        assert dead is not None and dead["state"] == "dead"
        assert dead["last_error"].startswith("undelivered after 1 day, 0:00:00 (1 attempts; HTTP 503)")


async def test_deliveries_to_a_webhook_no_longer_configured_are_given_up_on_start(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    clock = MutableClock(TUESDAY_10AM)
    store = Store(tmp_path / "db")
    store.event_targets = (EventTarget("https://removed.example/hook", ("*",)),)
    store.emit_event("release.failed", "s", {"service": "notify"}, clock.now())
    store.close()
    async with worker(tmp_path / "db", hook.url, Waits(), clock) as (deliveries, db):
        await deliveries.drained()
        row = db.sync.sql.one("SELECT state, last_error FROM deliveries")
        assert row == {"state": "dead", "last_error": "target no longer configured"}
        assert hook.deliveries == []


async def test_with_no_target_left_the_rows_of_removed_ones_are_given_up_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = MutableClock(TUESDAY_10AM)
    db_path = tmp_path / "releasebot.db"
    store = Store(db_path)  # an earlier run had a webhook and GitHub Deployments
    removed = "https://removed.example/hook?token=s3cret"
    store.event_targets = (EventTarget(removed, ("*",)), EventTarget(GITHUB, (PREFIX + "release.*",)))
    for n in (1, 2):
        store.emit_event("release.failed", f"notify/prod/release/{n}", {"service": "notify"}, clock.now())
    store.emit_event("train.departed", "prod/train/1", {"env": "prod"}, clock.now())
    store.close()
    given_up = "releasebot_event_deliveries_given_up_total"
    before = {t: REGISTRY.get_sample_value(given_up, {"target": t}) or 0.0 for t in ("https://removed.example", GITHUB)}

    caplog.set_level(logging.WARNING, logger="release_bot.events")
    async with running_bot(tmp_path, clock=clock, db_path=db_path) as bot:  # the config names no target now
        rows = bot.store.sql.query("SELECT target, state, last_error FROM deliveries ORDER BY event_id, target")
        assert bot.runtime.events.targets == []

    assert {(r["state"], r["last_error"]) for r in rows} == {("dead", "target no longer configured")}
    assert len(rows) == 5
    lines = [r.getMessage() for r in caplog.records if r.name == "release_bot.events"]
    assert lines == [
        "events: gave up on 2 deliveries to github: no longer configured",
        "events: gave up on 3 deliveries to https://removed.example: no longer configured",
    ]
    assert "s3cret" not in caplog.text
    after = {t: REGISTRY.get_sample_value(given_up, {"target": t}) or 0.0 for t in before}
    assert {t: after[t] - before[t] for t in before} == {"https://removed.example": 3, GITHUB: 2}
