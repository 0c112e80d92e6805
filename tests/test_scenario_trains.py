"""Release trains through the real signed HTTP app: boarding calls, departures, Hold and Leave off, restarts.

The prod train carries notify and payments from staging, Monday to Friday at 14:00, with a 15-minute boarding
call. Time moves with the harness's clock; the scheduler's wake-up is the call its jobs make
(``trains.run_due``), as the scheduled-release scenarios do. Restarts run a second app on the same database
and the same fake Slack.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient, TestServer

from bot.bootstrap import http_app
from bot.config import parse_config
from bot.core.trains import BoardingState, DepartureState
from bot.engine.base import SYSTEM_USER
from bot.store import Store
from commands.home import home_for
from tests.fakes import FakeSlackWebAPI
from tests.fakes.slack_api import RecordedCall
from tests.fakes.slack_signing import block_actions_body, signed_headers, view_submission_body
from tests.harness import (
    CHANNEL,
    DIGEST,
    ONCALL1,
    OUTSIDER,
    RELEASER,
    SECRET,
    TUESDAY_10AM,
    BotHarness,
    MutableClock,
    blocks_text,
    buttons,
    config_dict,
    harness_settings,
    record_live,
)

ZONE = ZoneInfo("America/Toronto")
PAYMENTS = "C02PAYMENTS"
LEAD = "U01LEADLEAD"
BOARDING_CALL = TUESDAY_10AM + timedelta(hours=3, minutes=45)  # Tue 24 Nov 13:45
DEPARTURE = TUESDAY_10AM + timedelta(hours=4)  # Tue 24 Nov 14:00


def train_config(log: Path, **train: Any) -> dict[str, Any]:
    data = config_dict(log)
    data["groups"]["leads"] = [LEAD]
    data["services"]["payments"] = {"channel": PAYMENTS, "components": ["api"], "pipeline": ["staging", "prod"]}
    data["trains"] = {
        "prod": {
            "departs": ["Mon-Fri 14:00"],
            "from": "staging",
            "services": ["notify", "payments"],
            "notice": "15m",
            "hold": ["leads"],
        }
        | train
    }
    return data


@asynccontextmanager
async def bot_run(
    tmp_path: Path, slack: FakeSlackWebAPI, clock: MutableClock, **train: Any
) -> AsyncIterator[BotHarness]:
    """One run of the real HTTP app; the runs of a test share the database file and ``slack``, as restarts of
    one deployment do."""
    log = tmp_path / "deploys.log"
    config = parse_config(train_config(log, **train))
    db = tmp_path / "releasebot.db"
    client = TestClient(TestServer(http_app(harness_settings(slack, db), config, tmp_path, clock=clock)))
    await client.start_server()
    bot = BotHarness(slack=slack, client=client, clock=clock, log=log, db_path=db, config=config)
    try:
        await bot.settle()
        yield bot
        await bot.settle()
    finally:
        await client.close()


@asynccontextmanager
async def one_bot(tmp_path: Path, now: datetime = TUESDAY_10AM, **train: Any) -> AsyncIterator[BotHarness]:
    async with FakeSlackWebAPI() as slack:
        slack.set_usergroup("S01PLATFORM", ["U01PLATFORM"])
        async with bot_run(tmp_path, slack, MutableClock(now), **train) as bot:
            yield bot


def candidate(store: Store, service: str, version: str, now: datetime, *, unit: str = "passed") -> None:
    components = ["api", "worker"] if service == "notify" else ["api"]
    images = {c: f"ghcr.io/example/{service}-{c}:{version}@{DIGEST}" for c in components}
    store.put_candidate(
        service=service,
        version=version,
        commit=(service + version.replace(".", "") + "b" * 40)[:40],
        committed_at=now - timedelta(hours=6),
        components=images,
        tests={"unit": unit},
        now=now,
    )
    for component, ref in images.items():
        store.put_scan(
            service,
            version,
            component,
            {
                "artifact": ref,
                "artifact_type": "container_image",
                "counts": {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0},
                "total": 0,
                "top": [],
            },
            now,
        )


def staged(bot: BotHarness, *, payments_unit: str = "passed") -> None:
    """notify 1.2.3 and payments 2.0.1 ran in staging; prod runs 1.2.2 and 2.0.0."""
    now, store = bot.clock.now(), bot.store
    for service, old, new, unit in (
        ("notify", "1.2.2", "1.2.3", "passed"),
        ("payments", "2.0.0", "2.0.1", payments_unit),
    ):
        candidate(store, service, old, now - timedelta(days=3))
        candidate(store, service, new, now, unit=unit)
        record_live(store, "prod", old, now - timedelta(days=2), service=service)
        record_live(store, "staging", new, now - timedelta(hours=1), service=service)


def posts(bot: BotHarness, channel: str, words: str) -> list[RecordedCall]:
    return [
        c
        for c in bot.slack.calls_to("chat.postMessage")
        if c.args.get("channel") == channel and words in str(c.args.get("text", ""))
    ]


async def posted(bot: BotHarness, channel: str, words: str, count: int = 1) -> list[RecordedCall]:
    """Wait for the outbox to deliver ``count`` posts containing ``words`` in ``channel`` (never sleep)."""

    def match(call: RecordedCall) -> bool:
        return call.args.get("channel") == channel and words in str(call.args.get("text", ""))

    return await bot.slack.wait_for("chat.postMessage", count=count, predicate=match)


def prod_deploys(bot: BotHarness) -> list[str]:
    return [line for line in bot.deploys() if line.endswith("prod 100")]


async def at(bot: BotHarness, when: datetime) -> None:
    """Move the clock and make the wake-up the scheduler would make then."""
    bot.clock.set(when)
    await bot.engine.trains.run_due()
    await bot.settle()


def the_departure(bot: BotHarness, departure_id: int = 1) -> Any:
    found = bot.store.get_departure(departure_id)
    assert found is not None
    return found


def boarding_states(bot: BotHarness, departure_id: int = 1) -> dict[str, str]:
    return {b.service: b.state for b in bot.store.boardings(departure_id)}


async def ask(bot: BotHarness, text: str, *, user: str = RELEASER, channel: str = CHANNEL) -> str:
    response = await bot.command(text, user=user, channel=channel)
    assert response.status == 200
    await bot.settle()
    body = (await response.read()).strip()
    if body:
        payload = json.loads(body)
        return str(payload.get("text", "")) + "\n" + blocks_text(payload.get("blocks", []))
    return bot.last_reply(user)


async def hold_click(bot: BotHarness, departure_id: int, *, user: str, channel: str = CHANNEL) -> None:
    body = block_actions_body(
        user_id=user,
        action_id="train_hold",
        value=str(departure_id),
        channel_id=channel,
        response_url=bot.slack.new_response_url(channel=channel, user_id=user),
    )
    response = await bot.client.post("/slack/events", data=body, headers=signed_headers(SECRET, body))
    assert response.status == 200
    await bot.settle()


async def hold_submit(bot: BotHarness, departure_id: int, reason: str, *, user: str, channel: str = CHANNEL) -> None:
    body = view_submission_body(
        "train_hold_reason",
        {"reason": {"reason": {"type": "plain_text_input", "value": reason}}},
        user_id=user,
        private_metadata=f"{departure_id}:{channel}",
    )
    response = await bot.client.post("/slack/events", data=body, headers=signed_headers(SECRET, body))
    assert response.status == 200
    await bot.settle()


# --- a departure -----------------------------------------------------------------------------------------------
async def test_a_departure_boards_two_services_and_one_whose_checklist_fails_stays_off(tmp_path: Path) -> None:
    async with one_bot(tmp_path) as bot:
        staged(bot, payments_unit="failed")
        [dep] = bot.store.departures_in([DepartureState.PENDING])
        assert (dep.env, dep.at, dep.boards_at) == ("prod", DEPARTURE, BOARDING_CALL), "planned on start"

        trains = await ask(bot, "trains", user=OUTSIDER)  # anyone may look
        assert "*prod train*" in trains and "Tue 24 Nov 14:00 EST" in trains, trains
        assert "notify 1.2.3 (from staging), payments 2.0.1 (from staging)" in trains, trains
        queue = await ask(bot, "queue", user=OUTSIDER)
        assert "No scheduled releases of notify are waiting." in queue, queue
        assert "prod train · next departure Tue 24 Nov 14:00 EST · would board: notify 1.2.3" in queue, queue

        await at(bot, BOARDING_CALL - timedelta(minutes=1))
        assert the_departure(bot).state == DepartureState.PENDING and posts(bot, CHANNEL, "Boarding") == []
        await at(bot, BOARDING_CALL)
        await at(bot, BOARDING_CALL)  # a second wake-up (a job firing twice, a sweep) boards nothing again
        [call] = await posted(bot, CHANNEL, "Boarding")
        assert "*notify 1.2.3* (what staging runs) boards" in call.args["text"], call.args["text"]
        blocks = blocks_text(call.args["blocks"])
        assert "Checklist:* ✅ passes" in blocks and "Release notes:*" in blocks, blocks
        assert buttons(call.args["blocks"]) == {"train_hold": "1", "train_leave_off": "1"}
        [pay_call] = await posted(bot, PAYMENTS, "Boarding")
        assert "⚠️ fails now" in blocks_text(pay_call.args["blocks"]), pay_call.args["blocks"]
        assert boarding_states(bot) == {"notify": BoardingState.BOARDING, "payments": BoardingState.BOARDING}
        assert prod_deploys(bot) == []

        await at(bot, DEPARTURE)
        await at(bot, DEPARTURE)
        assert prod_deploys(bot) == ["notify 1.2.3 prod 100"], "notify departed once; payments stayed off"
        assert the_departure(bot).state == DepartureState.DEPARTED
        rows = {b.service: b for b in bot.store.boardings(1)}
        assert rows["notify"].state == BoardingState.BOARDED and rows["notify"].release_id is not None
        release = bot.store.get_release(rows["notify"].release_id)
        assert release is not None and release.requested_by == SYSTEM_USER and release.version == "1.2.3"
        assert release.thread_ts is not None, "it tells its story in its own thread, as any release"
        assert rows["payments"].state == BoardingState.REFUSED and rows["payments"].release_id is None
        [refusal] = await posted(bot, PAYMENTS, "stays off")
        assert "payments 2.0.1 stays off the prod train of Tue 24 Nov 14:00 EST" in refusal.args["text"]
        assert "unit" in refusal.args["text"], refusal.args["text"]
        assert any(e.request_id == "train-1-notify" for e in bot.store.audit_since(None))

        # The next departure is planned; the version that boarded never boards again.
        [following] = bot.store.departures_in([DepartureState.PENDING])
        assert following.at == DEPARTURE + timedelta(days=1)
        await at(bot, following.boards_at)
        assert {b.service for b in bot.store.boardings(following.id)} == {"payments"}, "notify has nothing new"


async def test_a_departure_in_a_closed_window_does_not_run_and_names_the_next_that_will(tmp_path: Path) -> None:
    friday = datetime(2026, 11, 27, 10, 0, tzinfo=ZONE)  # Friday: the window closes at 12:00 before the weekend
    async with one_bot(tmp_path, now=friday) as bot:
        staged(bot)
        trains = await ask(bot, "trains")
        assert "~Fri 27 Nov 14:00 EST~ does not run: after the 12:00 cut-off" in trains, trains
        await at(bot, friday + timedelta(hours=3, minutes=45))
        [call] = await posted(bot, CHANNEL, "does not run")
        text = call.args["text"]
        assert "The prod train of Fri 27 Nov 14:00 EST does not run: after the 12:00 cut-off" in text, text
        assert "The next departure that will run: Mon 30 Nov 14:00 EST." in text, text
        await posted(bot, PAYMENTS, "does not run")
        await at(bot, friday + timedelta(hours=4))
        assert the_departure(bot).state == DepartureState.CLOSED and bot.store.boardings(1) == []
        assert prod_deploys(bot) == [] and bot.slack.calls_to("chat.postMessage")
        [following] = bot.store.departures_in([DepartureState.PENDING])
        assert following.at == datetime(2026, 11, 30, 14, 0, tzinfo=ZONE)


# --- Hold and Leave off ----------------------------------------------------------------------------------------
async def test_hold_by_the_wrong_person_is_refused_and_by_a_lead_stops_the_departure(tmp_path: Path) -> None:
    async with one_bot(tmp_path) as bot:
        staged(bot)
        await at(bot, BOARDING_CALL)

        await hold_click(bot, 1, user=OUTSIDER)
        assert "you may not hold the prod train: that needs membership of leads or on-call" in bot.last_reply(OUTSIDER)
        assert bot.slack.calls_to("views.open") == [], "no reason form for someone who may not hold"
        # Submitting the form anyway (a forged submission) is refused the same way and changes nothing.
        await hold_submit(bot, 1, "I say so", user=OUTSIDER)
        assert the_departure(bot).state == DepartureState.BOARDING

        await hold_click(bot, 1, user=LEAD)
        [opened] = bot.slack.calls_to("views.open")
        view = opened.args["view"]
        view = json.loads(view) if isinstance(view, str) else view
        assert view["callback_id"] == "train_hold_reason" and view["private_metadata"] == f"1:{CHANNEL}"
        await hold_submit(bot, 1, "  ", user=LEAD)
        assert the_departure(bot).state == DepartureState.BOARDING, "a hold needs a reason"
        await hold_submit(bot, 1, "payments incident <!channel>", user=LEAD)
        dep = the_departure(bot)
        assert (dep.state, dep.held_by, dep.reason) == (DepartureState.HELD, LEAD, "payments incident <!channel>")
        [told] = await posted(bot, PAYMENTS, "is held by")
        assert "&lt;!channel&gt;" in told.args["text"], "what was typed is shown, never a ping"
        await posted(bot, CHANNEL, "is held by")

        await at(bot, DEPARTURE)
        assert prod_deploys(bot) == [] and the_departure(bot).state == DepartureState.HELD
        assert boarding_states(bot) == {"notify": BoardingState.BOARDING, "payments": BoardingState.BOARDING}
        # A late click: the departure is held already; nothing changes.
        await hold_click(bot, 1, user=ONCALL1)
        assert "is already held, so nothing was changed" in bot.last_reply(ONCALL1)
        await bot.click("train_leave_off", "1", user=RELEASER)
        assert "is already held, so nothing was changed" in bot.last_reply(RELEASER)
        assert len(bot.slack.calls_to("views.open")) == 1
        assert [e.action for e in bot.store.audit_since(None) if e.action == "train.held"] == ["train.held"]
        [following] = bot.store.departures_in([DepartureState.PENDING])
        assert following.at == DEPARTURE + timedelta(days=1), "the next departure boards as usual"


async def test_leave_off_takes_one_service_off_and_the_others_depart(tmp_path: Path) -> None:
    async with one_bot(tmp_path) as bot:
        staged(bot)
        await at(bot, BOARDING_CALL)
        payments = next(b for b in bot.store.boardings(1) if b.service == "payments")

        await bot.click("train_leave_off", str(payments.id), user=OUTSIDER, channel=PAYMENTS)
        assert "you may not leave a service off the prod train" in bot.last_reply(OUTSIDER)
        assert boarding_states(bot)["payments"] == BoardingState.BOARDING

        await bot.click("train_leave_off", str(payments.id), user=RELEASER, channel=PAYMENTS)
        assert "payments is off the prod train of Tue 24 Nov 14:00 EST" in bot.last_reply(RELEASER)
        await posted(bot, PAYMENTS, "is left off")
        await bot.click("train_leave_off", str(payments.id), user=ONCALL1, channel=PAYMENTS)
        assert "payments was already left off by <@U01RELEASE>, so nothing was changed" in bot.last_reply(ONCALL1)
        await bot.click("train_leave_off", "999", user=RELEASER)
        assert "that departure is not one of ours" in bot.last_reply(RELEASER)
        await bot.click("train_leave_off", "1; DROP", user=RELEASER)
        assert "that button is not one of ours" in bot.last_reply(RELEASER)

        await at(bot, DEPARTURE)
        assert prod_deploys(bot) == ["notify 1.2.3 prod 100"]
        assert boarding_states(bot) == {"notify": BoardingState.BOARDED, "payments": BoardingState.LEFT_OFF}
        await bot.click("train_leave_off", str(payments.id), user=RELEASER)
        assert "has already departed, so nothing was changed" in bot.last_reply(RELEASER)


async def test_a_replayed_click_changes_nothing(tmp_path: Path) -> None:
    async with one_bot(tmp_path) as bot:
        staged(bot)
        await at(bot, BOARDING_CALL)
        notify = next(b for b in bot.store.boardings(1) if b.service == "notify")
        body = block_actions_body(
            user_id=RELEASER,
            action_id="train_leave_off",
            value=str(notify.id),
            channel_id=CHANNEL,
            response_url=bot.slack.new_response_url(channel=CHANNEL, user_id=RELEASER),
        )
        first = await bot.client.post("/slack/events", data=body, headers=signed_headers(SECRET, body))
        assert first.status == 200
        await bot.settle()
        await posted(bot, CHANNEL, "is left off")
        replay = await bot.client.post("/slack/events", data=body, headers=signed_headers(SECRET, body))
        assert replay.status == 200
        await bot.settle()
        assert len(bot.replies_to(RELEASER)) == 1, "the replay is acknowledged and not acted on"
        assert len(posts(bot, CHANNEL, "is left off")) == 1
        assert [e.action for e in bot.store.audit_since(None) if e.action == "train.left_off"] == ["train.left_off"]


# --- restarts --------------------------------------------------------------------------------------------------
async def test_a_restart_before_departure_neither_loses_nor_repeats_it(tmp_path: Path) -> None:
    clock = MutableClock(TUESDAY_10AM)
    async with FakeSlackWebAPI() as slack:
        async with bot_run(tmp_path, slack, clock) as bot:
            staged(bot)
            await at(bot, BOARDING_CALL)
            await posted(bot, CHANNEL, "Boarding")
        clock.set(BOARDING_CALL + timedelta(minutes=5))
        async with bot_run(tmp_path, slack, clock) as bot:  # back before departure: still boarding, not re-called
            assert the_departure(bot).state == DepartureState.BOARDING
            assert len(bot.store.departures_in([DepartureState.PENDING, DepartureState.BOARDING])) == 1
            assert len(posts(bot, CHANNEL, "Boarding")) == 1
            await at(bot, DEPARTURE)
            assert sorted(prod_deploys(bot)) == ["notify 1.2.3 prod 100", "payments 2.0.1 prod 100"]
        clock.set(DEPARTURE + timedelta(minutes=10))
        async with bot_run(tmp_path, slack, clock) as bot:  # after departure: nothing departs twice
            await at(bot, DEPARTURE + timedelta(minutes=11))
            assert sorted(prod_deploys(bot)) == ["notify 1.2.3 prod 100", "payments 2.0.1 prod 100"]
            assert the_departure(bot).state == DepartureState.DEPARTED
            assert len(posts(bot, CHANNEL, "Boarding")) == 1
            [following] = bot.store.departures_in([DepartureState.PENDING])
            assert following.id == 2 and following.at == DEPARTURE + timedelta(days=1)


async def test_a_departure_missed_while_down_runs_if_its_window_is_open_else_is_reported(tmp_path: Path) -> None:
    clock = MutableClock(TUESDAY_10AM)
    async with FakeSlackWebAPI() as slack:
        async with bot_run(tmp_path, slack, clock) as bot:
            staged(bot)
        clock.set(DEPARTURE + timedelta(hours=2, minutes=30))  # 16:30: prod's window closed at 16:00
        async with bot_run(tmp_path, slack, clock) as bot:
            dep = the_departure(bot)
            assert (dep.state, dep.reason) == (DepartureState.MISSED, "the bot was not running")
            [told] = await posted(bot, CHANNEL, "was missed")
            assert "The next departure that will run: Wed 25 Nov 14:00 EST." in told.args["text"], told.args
            await posted(bot, PAYMENTS, "was missed")
            assert prod_deploys(bot) == [] and bot.store.boardings(1) == []
            [following] = bot.store.departures_in([DepartureState.PENDING])
            assert following.at == DEPARTURE + timedelta(days=1)
        clock.set(DEPARTURE + timedelta(days=1, minutes=30))  # Wed 14:30: the window it fell in is still open
        async with bot_run(tmp_path, slack, clock) as bot:
            assert the_departure(bot, 2).state == DepartureState.DEPARTED
            assert sorted(prod_deploys(bot)) == ["notify 1.2.3 prod 100", "payments 2.0.1 prod 100"]
            assert posts(bot, CHANNEL, "was missed") and len(posts(bot, CHANNEL, "was missed")) == 1


async def test_app_home_and_the_summary_show_the_trains(tmp_path: Path) -> None:
    async with one_bot(tmp_path) as bot:
        staged(bot)
        home = blocks_text((await home_for(bot.engine, RELEASER))["blocks"])
        assert "Release trains" in home and "next Tue 24 Nov 14:00 EST" in home, home
        assert "would board: notify 1.2.3 (from staging), payments 2.0.1 (from staging)" in home, home
        await at(bot, BOARDING_CALL)
        await hold_submit(bot, 1, "incident", user=LEAD)
        summary = await ask(bot, "summary day")
        assert "Release trains" in summary and "0 departed · 1 held · 0 missed" in summary, summary
