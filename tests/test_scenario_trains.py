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

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.bootstrap import http_app
from bot.config import parse_config
from bot.core.models import ReleaseState
from bot.core.trains import BoardingState, DepartureState
from bot.engine.base import SYSTEM_USER
from bot.store import Store
from bot.store.outbox import placeholder_id
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
from tests.test_outbox import Waits
from tests.test_scenario_slack_faults import outbox, use_policy

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
    tmp_path: Path,
    slack: FakeSlackWebAPI,
    clock: MutableClock,
    *,
    no_trains: bool = False,
    prod: dict[str, Any] | None = None,
    **train: Any,
) -> AsyncIterator[BotHarness]:
    """One run of the real HTTP app; the runs of a test share the database file and ``slack``, as restarts of
    one deployment do. ``no_trains``: the config with its ``trains`` section removed; ``prod``: settings added to
    the prod environment's."""
    log = tmp_path / "deploys.log"
    data = train_config(log, **train)
    data["environments"]["prod"].update(prod or {})
    # A log per service for prod: a departure deploys its services at once, and the stub refuses (exit 9) a
    # deploy that overlaps another one writing to the same log.
    data["environments"]["prod"]["deploy"]["run"][1] = f"{log}.{{service}}"
    if no_trains:
        del data["trains"]
    config = parse_config(data)
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
async def one_bot(
    tmp_path: Path, now: datetime = TUESDAY_10AM, *, prod: dict[str, Any] | None = None, **train: Any
) -> AsyncIterator[BotHarness]:
    async with FakeSlackWebAPI() as slack:
        slack.set_usergroup("S01PLATFORM", ["U01PLATFORM"])
        async with bot_run(tmp_path, slack, MutableClock(now), prod=prod, **train) as bot:
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
    """The prod deploys of every service, from each service's own log (see ``bot_run``)."""
    lines = []
    for service in ("notify", "payments"):
        log = bot.log.with_name(f"{bot.log.name}.{service}")
        lines += log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if line.endswith("prod 100")]


async def at(bot: BotHarness, when: datetime) -> None:
    """Move the clock and make the wake-up the scheduler would make then."""
    bot.clock.set(when)
    await bot.engine.trains.run_due()
    await bot.settle()


def prod_runs(bot: BotHarness, service: str) -> str | None:
    state = bot.store.env_state(service, "prod")
    return None if state is None else state.version


def the_departure(bot: BotHarness, departure_id: int = 1) -> Any:
    found = bot.store.get_departure(departure_id)
    assert found is not None
    return found


def row_of(bot: BotHarness, service: str, departure_id: int = 1) -> Any:
    return next(b for b in bot.store.boardings(departure_id) if b.service == service)


async def call_shows(bot: BotHarness, service: str, words: str, departure_id: int = 1) -> Any:
    """Wait for the edit of ``service``'s boarding call that shows ``words``; the message as people see it now
    (never sleep: the fake Slack is awaited)."""
    row = row_of(bot, service, departure_id)
    assert row.channel and row.message_ts and not row.message_ts.startswith("outbox:"), row

    def match(call: RecordedCall) -> bool:
        args = call.args
        return args.get("channel") == row.channel and args.get("ts") == row.message_ts and words in args["text"]

    await bot.slack.wait_for("chat.update", predicate=match)
    message = bot.slack.message(row.channel, row.message_ts)
    assert words in message.text, message.text
    return message


def edits_of(bot: BotHarness, service: str, departure_id: int = 1) -> list[RecordedCall]:
    row = row_of(bot, service, departure_id)
    return [c for c in bot.slack.calls_to("chat.update") if c.args.get("ts") == row.message_ts]


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
        # Each boarding call shows what became of its service, without buttons.
        shown = await call_shows(bot, "notify", f"Departed with release #{release.id}")
        assert buttons(shown.blocks) == {}
        shown = await call_shows(bot, "payments", "Refused at departure")
        assert "unit" in shown.text and buttons(shown.blocks) == {}, shown.text

        # The next departure is planned; the version that boarded never boards again.
        [following] = bot.store.departures_in([DepartureState.PENDING])
        assert following.at == DEPARTURE + timedelta(days=1)
        await at(bot, following.boards_at)
        assert {b.service for b in bot.store.boardings(following.id)} == {"payments"}, "notify has nothing new"


async def test_a_version_whose_release_did_not_ship_boards_the_next_departure_again(tmp_path: Path) -> None:
    """Tuesday's train boards notify 1.2.3 and its prod deploy fails: prod still runs 1.2.2, so Wednesday's call
    announces 1.2.3 again and the departure carries it (a version boards once only while its release is on its
    way or shipped). Once that release succeeded, a later call skips 1.2.3 quietly even if prod moved off it."""
    async with one_bot(tmp_path) as bot:
        staged(bot)
        failing = bot.log.with_name(f"{bot.log.name}.notify.fail")
        failing.write_text("canary: error rate 12%\n")
        await at(bot, BOARDING_CALL)
        await at(bot, DEPARTURE)
        first = row_of(bot, "notify")
        assert first.state == BoardingState.BOARDED and first.release_id is not None
        failed = bot.store.get_release(first.release_id)
        assert failed is not None and failed.state in (ReleaseState.FAILED, ReleaseState.ROLLED_BACK), failed
        assert prod_runs(bot, "notify") == "1.2.2"

        failing.unlink()  # the cause is fixed; staging still runs 1.2.3
        [wednesday] = bot.store.departures_in([DepartureState.PENDING])
        assert wednesday.at == DEPARTURE + timedelta(days=1)
        trains = await ask(bot, "trains")
        assert "would board: notify 1.2.3 (from staging)" in trains, trains
        await at(bot, wednesday.boards_at)
        calls = await posted(bot, CHANNEL, "Boarding", count=2)
        assert "*notify 1.2.3* (what staging runs) boards" in calls[-1].args["text"], calls[-1].args["text"]
        assert buttons(calls[-1].args["blocks"]) == {"train_hold": "2", "train_leave_off": "3"}
        assert boarding_states(bot, wednesday.id) == {"notify": BoardingState.BOARDING}, "payments shipped"
        await at(bot, wednesday.at)
        again = row_of(bot, "notify", wednesday.id)
        assert again.state == BoardingState.BOARDED and again.release_id not in (None, failed.id), again
        shipped = bot.store.get_release(again.release_id or 0)
        assert shipped is not None and shipped.state == ReleaseState.SUCCEEDED and shipped.version == "1.2.3"
        assert prod_runs(bot, "notify") == "1.2.3"
        assert prod_deploys(bot).count("notify 1.2.3 prod 100") == 2, prod_deploys(bot)
        await call_shows(bot, "notify", f"Departed with release #{shipped.id}", wednesday.id)
        earlier = row_of(bot, "notify")
        assert (earlier.state, earlier.release_id) == (BoardingState.SUPERSEDED, failed.id), "its history stays"
        assert posts(bot, CHANNEL, "already boarded") == [] and posts(bot, CHANNEL, "stays off") == []

        # prod moves off 1.2.3 without that release being rolled back (a deploy recorded from outside the bot):
        # 1.2.3 shipped once, so the next call does not announce it and nothing is refused at departure.
        record_live(bot.store, "prod", "1.2.2", bot.clock.now())
        [thursday] = bot.store.departures_in([DepartureState.PENDING])
        assert "would board: nothing new to carry right now" in await ask(bot, "trains")
        await at(bot, thursday.boards_at)
        await at(bot, thursday.at)
        assert bot.store.boardings(thursday.id) == [], "skipped quietly: no row"
        assert len(posts(bot, CHANNEL, "Boarding")) == 2 and prod_deploys(bot).count("notify 1.2.3 prod 100") == 2


async def test_a_version_waits_while_its_release_awaits_approval_and_boards_again_once_that_expired(
    tmp_path: Path,
) -> None:
    """prod asks one approval that expires after a day. While Tuesday's releases wait for it, Wednesday's call
    announces nothing (they are on their way); once the approvals expired (the releases are cancelled), Thursday's
    call announces both versions again and the departure boards them."""
    async with one_bot(tmp_path, prod={"approvals": {"required": 1, "from": ["oncall"], "expires_after": "1d"}}) as bot:
        staged(bot)
        await at(bot, BOARDING_CALL)
        await at(bot, DEPARTURE)
        waiting = {b.service: b for b in bot.store.boardings(1)}
        for row in waiting.values():
            release = bot.store.get_release(row.release_id or 0)
            assert row.state == BoardingState.BOARDED and release is not None, row
            assert release.state == ReleaseState.AWAITING_APPROVAL, release

        [wednesday] = bot.store.departures_in([DepartureState.PENDING])
        assert "would board: nothing new to carry right now" in await ask(bot, "trains")
        await at(bot, wednesday.boards_at)
        await at(bot, wednesday.at)
        assert bot.store.boardings(wednesday.id) == [] and len(posts(bot, CHANNEL, "Boarding")) == 1, "on its way"

        bot.clock.set(wednesday.at + timedelta(minutes=5))  # a day after Tuesday's requests: the approvals expire
        assert await bot.engine.approvals.expire_due() == 2  # what the armed jobs run
        await bot.settle()
        for row in waiting.values():
            release = bot.store.get_release(row.release_id or 0)
            assert release is not None and release.state == ReleaseState.CANCELLED, release
        [thursday] = bot.store.departures_in([DepartureState.PENDING])
        await at(bot, thursday.boards_at)
        [_, call] = await posted(bot, CHANNEL, "Boarding", count=2)
        assert "*notify 1.2.3* (what staging runs) boards" in call.args["text"], call.args["text"]
        await posted(bot, PAYMENTS, "Boarding", count=2)
        await at(bot, thursday.at)
        for service, earlier in waiting.items():
            again = row_of(bot, service, thursday.id)
            release = bot.store.get_release(again.release_id or 0)
            assert again.state == BoardingState.BOARDED and release is not None, again
            assert release.state == ReleaseState.AWAITING_APPROVAL and release.id != earlier.release_id, release
            assert row_of(bot, service).state == BoardingState.SUPERSEDED
        assert prod_deploys(bot) == [] and posts(bot, CHANNEL, "stays off") == []


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
        # Every boarding call is edited in place: who held it and why, and no buttons left.
        held = await call_shows(bot, "payments", f"is held by <@{LEAD}>: payments incident &lt;!channel&gt;")
        assert buttons(held.blocks) == {}, "what was typed is shown, never a ping; nothing left to click"
        assert buttons((await call_shows(bot, "notify", f"is held by <@{LEAD}>")).blocks) == {}
        assert posts(bot, PAYMENTS, "held") == [] and posts(bot, CHANNEL, "held") == [], "no new messages"
        assert "You held the prod train of Tue 24 Nov 14:00 EST" in bot.last_reply(LEAD)

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
        off = await call_shows(bot, "payments", "Left off by <@U01RELEASE>")
        assert buttons(off.blocks) == {}, "payments' call has no buttons left"
        assert edits_of(bot, "notify") == [], "the other services' calls keep theirs"
        notify_ts = row_of(bot, "notify").message_ts
        assert buttons(bot.slack.message(CHANNEL, notify_ts).blocks) == {"train_hold": "1", "train_leave_off": "1"}
        assert posts(bot, PAYMENTS, "left off") == [], "no new message"
        await bot.click("train_leave_off", str(payments.id), user=ONCALL1, channel=PAYMENTS)
        assert "payments was already left off by <@U01RELEASE>, so nothing was changed" in bot.last_reply(ONCALL1)
        await bot.click("train_leave_off", "999", user=RELEASER)
        assert "that departure is not one of ours" in bot.last_reply(RELEASER)
        await bot.click("train_leave_off", "1; DROP", user=RELEASER)
        assert "that button is not one of ours" in bot.last_reply(RELEASER)

        await at(bot, DEPARTURE)
        assert prod_deploys(bot) == ["notify 1.2.3 prod 100"]
        assert boarding_states(bot) == {"notify": BoardingState.BOARDED, "payments": BoardingState.LEFT_OFF}
        await call_shows(bot, "notify", "Departed with release #")
        assert "Left off by <@U01RELEASE>" in (await call_shows(bot, "payments", "Left off")).text
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
        await call_shows(bot, "notify", "Left off by")
        replay = await bot.client.post("/slack/events", data=body, headers=signed_headers(SECRET, body))
        assert replay.status == 200
        await bot.settle()
        assert len(bot.replies_to(RELEASER)) == 1, "the replay is acknowledged and not acted on"
        assert len(edits_of(bot, "notify")) == 1
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


async def test_a_boarding_call_that_never_went_out_is_posted_at_the_next_start_once(tmp_path: Path) -> None:
    """The boarding claim is stored but no call went out (here Slack refused both posts; a crash between the claim
    and the post leaves the same rows: boarding, no message). The next start posts them; the one after does not."""
    clock = MutableClock(TUESDAY_10AM)
    async with FakeSlackWebAPI() as slack:
        async with bot_run(tmp_path, slack, clock) as bot:
            staged(bot)
            slack.fail_next("chat.postMessage", times=2, status=200, error="channel_not_found")
            await at(bot, BOARDING_CALL)
            assert the_departure(bot).state == DepartureState.BOARDING
            assert [b.message_ts for b in bot.store.boardings(1)] == [None, None]
            assert posts(bot, CHANNEL, "Boarding") == [] and posts(bot, PAYMENTS, "Boarding") == []
        for restart in (1, 2):
            clock.set(BOARDING_CALL + timedelta(minutes=restart))
            async with bot_run(tmp_path, slack, clock) as bot:
                [call] = await posted(bot, CHANNEL, "Boarding")
                [pay_call] = await posted(bot, PAYMENTS, "Boarding")
                assert buttons(call.args["blocks"]) == {"train_hold": "1", "train_leave_off": "1"}
                assert all(b.message_ts for b in bot.store.boardings(1)), f"remembered (restart {restart})"
        async with bot_run(tmp_path, slack, clock) as bot:
            await at(bot, DEPARTURE)
            assert sorted(prod_deploys(bot)) == ["notify 1.2.3 prod 100", "payments 2.0.1 prod 100"]
            await call_shows(bot, "notify", "Departed with release #")
            await call_shows(bot, "payments", "Departed with release #")
            assert len(posts(bot, CHANNEL, "Boarding")) == 1 and len(posts(bot, PAYMENTS, "Boarding")) == 1


async def test_a_changed_timetable_cancels_the_stored_departure_and_plans_from_the_new_one(tmp_path: Path) -> None:
    clock = MutableClock(TUESDAY_10AM)
    async with FakeSlackWebAPI() as slack:
        async with bot_run(tmp_path, slack, clock) as bot:
            staged(bot)
            assert the_departure(bot).at == DEPARTURE and the_departure(bot).state == DepartureState.PENDING
        clock.set(TUESDAY_10AM + timedelta(minutes=5))
        async with bot_run(tmp_path, slack, clock, departs=["Mon-Fri 11:00"]) as bot:
            old = the_departure(bot)
            assert (old.state, old.reason) == (DepartureState.CANCELLED, "the train's timetable changed")
            [new] = bot.store.departures_in([DepartureState.PENDING])
            assert new.at == TUESDAY_10AM + timedelta(hours=1), "planned from the current config: Tue 11:00"
            assert [e.action for e in bot.store.audit_since(None) if e.action == "train.cancelled"] == [
                "train.cancelled"
            ]
            trains = await ask(bot, "trains")
            assert "Tue 24 Nov 11:00 EST" in trains and "14:00" not in trains, trains
            await at(bot, new.at)
            assert sorted(prod_deploys(bot)) == ["notify 1.2.3 prod 100", "payments 2.0.1 prod 100"]
            assert the_departure(bot).state == DepartureState.CANCELLED, "the old one never runs"
            assert not [c for c in bot.slack.calls_to("chat.postMessage") if "cancelled" in str(c.args.get("text"))]
        clock.set(TUESDAY_10AM + timedelta(hours=2))
        async with bot_run(tmp_path, slack, clock, departs=["Mon-Fri 11:00"]) as bot:  # a restart changes nothing
            assert [d.state for d in (the_departure(bot, 1), the_departure(bot, 2))] == [
                DepartureState.CANCELLED,
                DepartureState.DEPARTED,
            ]
            [following] = bot.store.departures_in([DepartureState.PENDING])
            assert following.at == TUESDAY_10AM + timedelta(days=1, hours=1)


async def test_a_boarding_train_removed_from_the_config_is_cancelled_and_its_calls_say_so(tmp_path: Path) -> None:
    clock = MutableClock(TUESDAY_10AM)
    async with FakeSlackWebAPI() as slack:
        async with bot_run(tmp_path, slack, clock) as bot:
            staged(bot)
            await at(bot, BOARDING_CALL)
            await posted(bot, CHANNEL, "Boarding")
        clock.set(BOARDING_CALL + timedelta(minutes=5))
        async with bot_run(tmp_path, slack, clock, no_trains=True) as bot:
            dep = the_departure(bot)
            assert (dep.state, dep.reason) == (DepartureState.CANCELLED, "the train was removed from the config")
            for service in ("notify", "payments"):
                shown = await call_shows(bot, service, "Cancelled: the train was removed from the config")
                assert buttons(shown.blocks) == {}
            assert bot.store.departures_in([DepartureState.PENDING, DepartureState.BOARDING]) == []
            clock.set(DEPARTURE)
            await bot.engine.trains.run_due()
            await bot.settle()
            assert prod_deploys(bot) == []
        clock.set(DEPARTURE + timedelta(days=3))  # Fri 14:00: the train is back after two of its slots passed
        async with bot_run(tmp_path, slack, clock) as bot:
            assert bot.store.departures_in([DepartureState.MISSED]) == [], "no timetable kept them: none missed"
            assert posts(bot, CHANNEL, "missed") == []
            [following] = bot.store.departures_in([DepartureState.PENDING])
            assert following.at == DEPARTURE + timedelta(days=6), "planned from now: Mon 30 Nov 14:00"


async def test_departures_slept_through_are_reported_once_the_latest_ten_and_a_count(tmp_path: Path) -> None:
    hourly = ["Mon-Thu 10:00", "Mon-Thu 11:00", "Mon-Thu 13:00", "Mon-Thu 14:00", "Mon-Thu 15:00"]
    clock = MutableClock(TUESDAY_10AM - timedelta(hours=2))  # Tue 08:00: the first departure is Tue 10:00
    async with FakeSlackWebAPI() as slack:
        async with bot_run(tmp_path, slack, clock, departs=hourly) as bot:
            staged(bot)
        clock.set(datetime(2026, 11, 30, 8, 0, tzinfo=ZONE))  # back on Monday 08:00, after Tue-Thu's 15 slots
        async with bot_run(tmp_path, slack, clock, departs=hourly) as bot:
            [first] = await posted(bot, CHANNEL, "was missed")
            assert "The prod train of Tue 24 Nov 10:00 EST was missed" in first.args["text"], first.args
            [many] = await posted(bot, CHANNEL, "missed 14 departures")
            text = many.args["text"]
            latest = [f"Wed 25 Nov {h}:00 EST" for h in (10, 11, 13, 14, 15)]
            latest += [f"Thu 26 Nov {h}:00 EST" for h in (10, 11, 13, 14, 15)]
            assert ", ".join(latest) + ", and 4 earlier." in text, text
            assert "Tue 24 Nov 11:00" not in text and "The next departure that will run: Mon 30 Nov 10:00 EST" in text
            await posted(bot, PAYMENTS, "missed 14 departures")
            missed = bot.store.departures_in([DepartureState.MISSED])
            assert len(missed) == 15 and prod_deploys(bot) == []
            [following] = bot.store.departures_in([DepartureState.PENDING])
            assert following.at == datetime(2026, 11, 30, 10, 0, tzinfo=ZONE)
            summary = await ask(bot, "summary week")
            assert "15 missed" in summary, summary
        clock.set(datetime(2026, 11, 30, 8, 5, tzinfo=ZONE))
        async with bot_run(tmp_path, slack, clock, departs=hourly) as bot:  # reported once: a restart adds nothing
            assert (
                len(posts(bot, CHANNEL, "missed")) == 2 and len(bot.store.departures_in([DepartureState.MISSED])) == 15
            )


async def test_after_an_outage_the_latest_departure_still_in_its_window_runs_and_the_others_are_missed(
    tmp_path: Path,
) -> None:
    clock = MutableClock(TUESDAY_10AM)
    async with FakeSlackWebAPI() as slack:
        async with bot_run(tmp_path, slack, clock) as bot:
            staged(bot)
        clock.set(DEPARTURE + timedelta(days=2, minutes=30))  # Thu 14:30: Tue's and Wed's slots were slept through
        async with bot_run(tmp_path, slack, clock) as bot:
            await posted(bot, CHANNEL, "The prod train of Tue 24 Nov 14:00 EST was missed")
            [many] = await posted(bot, CHANNEL, "missed 1 departure while")
            assert "Wed 25 Nov 14:00 EST." in many.args["text"], many.args["text"]
            [thursday] = [d for d in bot.store.departures_in([DepartureState.DEPARTED])]
            assert thursday.at == DEPARTURE + timedelta(days=2), "Thursday's window is still open: it runs now"
            assert sorted(prod_deploys(bot)) == ["notify 1.2.3 prod 100", "payments 2.0.1 prod 100"]


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


async def test_a_call_posted_while_slack_was_down_is_still_edited_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox hands back a placeholder ts; the row keeps it until the call is posted, then the real ts (so a
    Hold edits the one message even after the outbox forgot its sent rows)."""
    use_policy(monkeypatch, Waits(held=True))  # the outbox's retries wait until the test wakes it
    async with one_bot(tmp_path) as bot:
        staged(bot)
        bot.slack.fail_next("chat.postMessage", times=2, status=503)  # both calls: each channel's lane backs off
        await at(bot, BOARDING_CALL)
        assert all(placeholder_id(b.message_ts) is not None for b in bot.store.boardings(1))
        assert posts(bot, CHANNEL, "Boarding") == []
        outbox(bot).wake()
        await outbox(bot).drained()
        [call] = posts(bot, CHANNEL, "Boarding")
        assert all(placeholder_id(b.message_ts) is None for b in bot.store.boardings(1)), "swapped for the real ts"
        bot.store.outbox_prune(bot.clock.now() + timedelta(days=8))
        await hold_submit(bot, 1, "incident", user=LEAD)
        await outbox(bot).drained()
        held = await call_shows(bot, "notify", f"is held by <@{LEAD}>: incident")
        assert buttons(held.blocks) == {} and len(posts(bot, CHANNEL, "Boarding")) == 1
