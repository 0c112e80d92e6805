"""Scheduled releases: `/release prod 1.2.3 at 14:00`, `/release queue`, `/release cancel <id>`.

Each test types the commands as signed slash commands and reads what Slack received. Time moves with the
harness's clock; the scheduler's wake-up is the call its job makes (``schedules.run_due``), as the checks'
scenario tests do. Restarts run a second app on the same database.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.core.grammar import ParseError, Vocabulary, When, parse
from bot.core.models import ReleaseState
from bot.core.scheduling import ScheduledState, resolve
from bot.store import Store
from tests.fakes import FakeSlackWebAPI
from tests.fakes.slack_api import RecordedCall
from tests.harness import (
    CHANNEL,
    ONCALL1,
    OUTSIDER,
    RELEASER,
    TUESDAY_10AM,
    BotHarness,
    MutableClock,
    app_on,
    blocks_text,
    running_bot,
)

ZONE = ZoneInfo("America/Toronto")
TWO_PM = TUESDAY_10AM + timedelta(hours=4)


async def ask(bot: BotHarness, text: str, *, user: str = RELEASER) -> str:
    """The answer the user sees: in the ack itself (a malformed command), or through response_url."""
    response = await bot.command(text, user=user)
    assert response.status == 200
    await bot.settle()
    body = (await response.read()).strip()
    if body:
        payload = json.loads(body)
        return str(payload.get("text", "")) + "\n" + blocks_text(payload.get("blocks", []))
    return bot.last_reply(user)


async def staged(bot: BotHarness, version: str = "1.2.3") -> None:
    """``version`` passed staging and 1.2.2 runs in prod: ready to be released to prod."""
    bot.live("prod", "1.2.2")
    bot.add_candidate(version)
    assert "has started" in await ask(bot, f"staging {version}")


def prod_releases(bot: BotHarness) -> list[str]:
    return [line for line in bot.deploys() if line.endswith("prod 100")]


def scheduled_row(store: Store, scheduled_id: int = 1) -> tuple[str, int | None, str | None]:
    found = store.get_scheduled(scheduled_id)
    assert found is not None
    return found.state, found.release_id, found.reason


def about(scheduled_id: int) -> object:
    def match(call: RecordedCall) -> bool:
        return call.args.get("channel") == CHANNEL and f"Scheduled release #{scheduled_id} " in str(
            call.args.get("text", "")
        )

    return match


def channel_posts_about(slack: FakeSlackWebAPI, scheduled_id: int) -> list[str]:
    match = about(scheduled_id)
    return [str(c.args.get("text")) for c in slack.calls_to("chat.postMessage") if match(c)]  # type: ignore[operator]


async def test_a_scheduled_release_is_shown_then_starts_at_its_time_once(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await staged(bot)
        answer = await ask(bot, "prod 1.2.3 at 14:00")
        assert "Scheduled release #1: notify 1.2.3 to prod at Tue 24 Nov 14:00 EST" in answer, answer
        assert "/release cancel 1" in answer
        assert prod_releases(bot) == [], "nothing runs before its time"

        queue = await ask(bot, "queue", user=OUTSIDER)  # anyone may read the queue
        assert "#1 · notify 1.2.3 to prod · Tue 24 Nov 14:00 EST · by <@U01RELEASE>" in queue, queue

        bot.clock.set(TWO_PM - timedelta(minutes=1))
        assert await bot.engine.schedules.run_due() == 0
        bot.clock.set(TWO_PM)
        # Two wake-ups at once (a job firing twice, a sweep racing it): one release.
        taken = await asyncio.gather(bot.engine.schedules.run_due(), bot.engine.schedules.run_due())
        assert sorted(taken) == [0, 1]
        await bot.settle()
        assert await bot.engine.schedules.run_due() == 0
        await bot.settle()

        assert prod_releases(bot) == ["notify 1.2.3 prod 100"]
        release = bot.store.history("notify", "prod", 1)[0]
        assert release.state is ReleaseState.SUCCEEDED and release.requested_by == RELEASER
        assert release.thread_ts is not None, "it tells its story in its own thread, as any release"
        assert scheduled_row(bot.store) == (ScheduledState.DONE, release.id, None)
        assert any(e.request_id == "scheduled-1" for e in bot.store.audit_since(None))
        assert "No scheduled releases of notify are waiting." in await ask(bot, "queue")


async def test_refused_at_its_time_the_channel_is_told_once(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await staged(bot)
        assert "Scheduled release #1" in await ask(bot, "prod 1.2.3 at 17:00")  # after business hours
        bot.clock.set(TUESDAY_10AM + timedelta(hours=7))
        assert await bot.engine.schedules.run_due() == 1
        await bot.settle()
        [post] = await bot.slack.wait_for("chat.postMessage", predicate=about(1))  # type: ignore[arg-type]
        text = str(post.args["text"])
        assert "Scheduled release #1 (notify 1.2.3 to prod, requested by <@U01RELEASE>" in text, text
        assert "did not start" in text and "window" in text, text
        assert prod_releases(bot) == []
        state, release_id, reason = scheduled_row(bot.store)
        assert (state, release_id) == (ScheduledState.REFUSED, None) and reason
        assert await bot.engine.schedules.run_due() == 0
        await bot.settle()
        assert len(channel_posts_about(bot.slack, 1)) == 1


async def test_a_promotion_scheduled_for_the_next_window_promotes_what_staging_runs_then(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await staged(bot)
        answer = await ask(bot, "prod at next-window")  # open now: the next opening is Wednesday 9:00
        assert "notify: promote what staging runs then to prod at Wed 25 Nov 09:00 EST" in answer, answer
        bot.add_candidate("1.2.4")
        assert "has started" in await ask(bot, "staging 1.2.4")
        bot.clock.set(datetime(2026, 11, 25, 9, 0, tzinfo=ZONE))
        assert await bot.engine.schedules.run_due() == 1
        await bot.settle()
        assert prod_releases(bot) == ["notify 1.2.4 prod 100"]
        assert "always open" in await ask(bot, "staging at next-window")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("prod 1.2.3 at 25:00", "is not a time of day"),
        ("prod 1.2.3 at funday 10:00", "is not a day"),
        ("prod 1.2.3 at 2026-02-30 10:00", "is not a date"),
        ("prod 1.2.3 at", "say when after `at`"),
        ("prod 1.2.3 at 09:00", "has already passed"),
        ("prod 1.2.3 at 2026-11-23 15:00", "has already passed"),
        ("prod 1.2.3 at 14:00 --force hurry", "cannot use `--force`"),
        ("prod 9.9.9 at 14:00", "9.9.9"),  # the plan is checked now: an unknown candidate
    ],
)
async def test_bad_schedules_are_refused_and_nothing_is_stored(tmp_path: Path, text: str, words: str) -> None:
    async with running_bot(tmp_path) as bot:
        await staged(bot)
        answer = await ask(bot, text)
        assert words in answer, answer
        assert "Scheduled release #" not in answer
        assert bot.count("scheduled_releases") == 0


async def test_scheduling_needs_the_right_to_release(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await staged(bot)
        answer = await ask(bot, "prod 1.2.3 at 14:00", user=OUTSIDER)
        assert "Scheduled release #" not in answer and "releasers" in answer, answer
        assert bot.count("scheduled_releases") == 0


async def test_cancel_by_its_requester_or_a_releaser_only(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await staged(bot)
        await ask(bot, "prod 1.2.3 at 14:00")
        assert "there is no scheduled release #99" in await ask(bot, "cancel 99")
        refused = await ask(bot, "cancel 1", user=OUTSIDER)
        assert "Cancelled" not in refused and "who scheduled it" in refused, refused
        assert scheduled_row(bot.store)[0] == ScheduledState.PENDING
        assert "Cancelled scheduled release #1 (notify 1.2.3 to prod" in await ask(bot, "cancel 1")
        assert "is cancelled already" in await ask(bot, "cancel 1", user=ONCALL1)
        assert "No scheduled releases" in await ask(bot, "queue")
        bot.clock.set(TWO_PM)
        assert await bot.engine.schedules.run_due() == 0
        await bot.settle()
        assert prod_releases(bot) == []


async def restart_at(tmp_path: Path, when: datetime, scheduled_at: str = "14:00") -> tuple[Store, list[str]]:
    """Schedule on one app, stop it, start another at ``when``; the store and the channel's posts about #1."""
    clock = MutableClock(TUESDAY_10AM)
    async with FakeSlackWebAPI() as slack:
        async with app_on(tmp_path, slack, clock) as bot:
            await staged(bot)
            assert "Scheduled release #1" in await ask(bot, f"prod 1.2.3 at {scheduled_at}")
            await bot.engine.close()
        clock.set(when)
        async with app_on(tmp_path, slack, clock) as bot:
            await bot.settle()
            await bot.engine.schedules.run_due()  # a wake-up after start finds nothing left to do
            await bot.settle()
            posts = channel_posts_about(slack, 1)
            deploys = prod_releases(bot)
        store = Store(tmp_path / "releasebot.db")
        assert deploys == (["notify 1.2.3 prod 100"] if scheduled_row(store)[0] == ScheduledState.DONE else [])
        return store, posts


async def test_one_due_while_the_bot_was_down_runs_on_start(tmp_path: Path) -> None:
    store, posts = await restart_at(tmp_path, TWO_PM + timedelta(minutes=20))
    state, release_id, _ = scheduled_row(store)
    assert state == ScheduledState.DONE and release_id is not None
    assert posts == []


async def test_one_more_than_an_hour_late_is_missed_and_said(tmp_path: Path) -> None:
    store, posts = await restart_at(tmp_path, TWO_PM + timedelta(minutes=61))
    assert scheduled_row(store)[0] == ScheduledState.MISSED
    [post] = posts
    assert "Scheduled release #1 (notify 1.2.3 to prod" in post and "was missed" in post, post


async def test_a_pending_one_survives_a_restart_and_runs_at_its_time(tmp_path: Path) -> None:
    clock = MutableClock(TUESDAY_10AM)
    async with FakeSlackWebAPI() as slack:
        async with app_on(tmp_path, slack, clock) as bot:
            await staged(bot)
            await ask(bot, "prod 1.2.3 at 14:00")
            await bot.engine.close()
        clock.advance(hours=1)
        async with app_on(tmp_path, slack, clock) as bot:
            await bot.settle()
            assert scheduled_row(bot.store)[0] == ScheduledState.PENDING
            assert "#1 · notify 1.2.3 to prod" in await ask(bot, "queue")
            clock.set(TWO_PM)
            assert await bot.engine.schedules.run_due() == 1
            await bot.settle()
            assert prod_releases(bot) == ["notify 1.2.3 prod 100"]


@pytest.mark.parametrize("recorded", [True, False])
async def test_a_crash_between_claim_and_outcome_never_runs_it_twice(tmp_path: Path, recorded: bool) -> None:
    """The row was claimed (starting) when the bot died: the audit trail says whether its release was recorded."""
    clock = MutableClock(TUESDAY_10AM)
    async with FakeSlackWebAPI() as slack:
        async with app_on(tmp_path, slack, clock) as bot:
            await staged(bot)
            await ask(bot, "prod 1.2.3 at 14:00")
            recorded_id = bot.store.history("notify", "staging", 1)[0].id  # stands for the release it recorded
            await bot.engine.close()
        store = Store(tmp_path / "releasebot.db")
        assert store.claim_scheduled(1, to=ScheduledState.STARTING)
        if recorded:  # the release was recorded under the scheduled request id, then the process died
            store.audit(
                actor=RELEASER,
                action="release.requested",
                subject=f"release:{recorded_id}",
                now=TWO_PM,
                detail={},
                request_id="scheduled-1",
            )
        store.close()
        clock.set(TWO_PM + timedelta(minutes=5))
        async with app_on(tmp_path, slack, clock) as bot:
            await bot.settle()
            assert await bot.engine.schedules.run_due() == 0
            await bot.settle()
            state, release_id, reason = scheduled_row(bot.store)
            assert prod_releases(bot) == [], "a claimed row is never taken again"
            posts = channel_posts_about(slack, 1)
        if recorded:
            assert (state, release_id, posts) == (ScheduledState.DONE, recorded_id, [])
        else:
            assert state == ScheduledState.REFUSED and reason is not None
            [post] = posts
            assert "did not start" in post and "nothing was released" in post, post


# --- the grammar and the times, without Slack ----------------------------------------------------------------
VOCAB = Vocabulary(frozenset({"notify"}), frozenset({"staging", "prod"}))


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("14:00", datetime(2026, 11, 24, 14, 0, tzinfo=ZONE)),
        ("tomorrow 9:30", datetime(2026, 11, 25, 9, 30, tzinfo=ZONE)),
        ("thu 10:00", datetime(2026, 11, 26, 10, 0, tzinfo=ZONE)),
        ("tuesday 11:00", datetime(2026, 11, 24, 11, 0, tzinfo=ZONE)),  # today, still ahead
        ("tue 09:00", datetime(2026, 12, 1, 9, 0, tzinfo=ZONE)),  # today's has passed: next week
        ("2026-12-01 08:15", datetime(2026, 12, 1, 8, 15, tzinfo=ZONE)),
    ],
)
def test_when_a_schedule_falls(words: str, expected: datetime) -> None:
    cmd = parse(f"prod 1.2.3 at {words}", VOCAB, channel_service="notify")
    assert cmd.name == "release" and cmd.version == "1.2.3" and cmd.at is not None
    assert resolve(cmd.at, TUESDAY_10AM, ZONE) == expected


def test_schedules_parse_on_deploy_and_promote_too() -> None:
    assert parse("deploy 1.2.3 to prod at 14:00", VOCAB, channel_service="notify").at == When("today", time(14, 0))
    promote = parse("promote staging to prod at next-window", VOCAB, channel_service="notify")
    assert promote.name == "promote" and promote.at == When("next-window")
    with pytest.raises(ParseError, match="say the time too"):
        parse("prod at tomorrow", VOCAB, channel_service="notify")
    assert resolve(When("today", time(9, 0)), datetime(2026, 11, 24, 15, tzinfo=UTC), ZONE) < TUESDAY_10AM
