"""Summaries end to end: `/release summary` through the signed HTTP route, the cron jobs, the weekly chart.

The release history is written with the store's own methods at chosen instants, so every DORA figure
the summary shows can be checked against a value computed by hand below.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block

from bot.config import parse_config
from bot.core.models import Release, ReleaseKind, ReleaseState
from bot.scheduler import summary_triggers
from bot.slack.notifier import SlackNotifier
from bot.slack.outbox import OutboxNotifier
from tests.harness import CHANNEL, ONCALL1, RELEASER, BotHarness, MutableClock, config_dict, running_bot
from tests.test_chart import assert_valid_png

TORONTO = ZoneInfo("America/Toronto")
# Monday 21 December 2026, 10:00 in Toronto: the summary week is Tue 15 – Mon 21 Dec.
MONDAY_DEC_21 = datetime(2026, 12, 21, 10, 0, tzinfo=TORONTO)
# Tuesday 24 November 2026, 10:00 (the harness default) and Friday 27 November, 14:00.
TUESDAY_NOV_24 = datetime(2026, 11, 24, 10, 0, tzinfo=TORONTO)
FRIDAY_NOV_27 = datetime(2026, 11, 27, 14, 0, tzinfo=TORONTO)


def local(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TORONTO)


# --- building a history through the store -------------------------------------------------------------
def candidate(bot: BotHarness, version: str, committed_at: datetime) -> None:
    bot.store.put_candidate(
        service="notify",
        version=version,
        commit=(version.replace(".", "") + "b" * 40)[:40],
        committed_at=committed_at,
        components={"api": f"ghcr.io/example/api:{version}"},
        tests={"unit": "passed"},
        now=committed_at,
    )


def released(
    bot: BotHarness,
    env: str,
    version: str,
    finished: datetime,
    *,
    state: ReleaseState = ReleaseState.SUCCEEDED,
    kind: ReleaseKind = ReleaseKind.PROMOTE,
    thread_ts: str | None = None,
    rollback_of: int | None = None,
) -> Release:
    """A release requested 10 minutes before ``finished`` that ended in ``state`` then."""
    release = bot.store.create_release(
        service="notify",
        env=env,
        version=version,
        kind=kind,
        state=ReleaseState.QUEUED,
        requested_by=RELEASER,
        now=finished - timedelta(minutes=10),
        take_lock=True,
        rollback_of=rollback_of,
    )
    if thread_ts is not None:
        bot.store.update_release(release.id, channel=CHANNEL, thread_ts=thread_ts)
    bot.store.transition(release.id, state, actor=RELEASER, detail="history", now=finished)
    found = bot.store.get_release(release.id)
    assert found is not None
    return found


def rolled_back(bot: BotHarness, original: Release, to: str, requested: datetime, done: datetime) -> None:
    """What the engine records for a rollback: the rollback release, then the original marked rolled back."""
    rollback = bot.store.create_release(
        service="notify",
        env=original.env,
        version=to,
        kind=ReleaseKind.ROLLBACK,
        state=ReleaseState.QUEUED,
        requested_by=ONCALL1,
        now=requested,
        take_lock=True,
        rollback_of=original.id,
    )
    bot.store.transition(rollback.id, ReleaseState.SUCCEEDED, actor=ONCALL1, detail="rolled back", now=done)
    assert bot.store.transition(
        original.id,
        ReleaseState.ROLLED_BACK,
        actor=ONCALL1,
        detail=f"rolled back by release #{rollback.id}",
        now=done,
        only_from={ReleaseState.SUCCEEDED},
        change_failure=True,
        healthy=False,
    )


ROLLED_BACK_THREAD = "1765900000.000100"


def december_history(bot: BotHarness) -> Release:
    """Two clean prod releases the week before; this week four to prod, one of them rolled back.

    Lead times (commit → in production): 2h, 5h (the rolled-back one is "finished" when rolled back,
    as the engine records it), 18h and 34h. Returns the rolled-back release.
    """
    # The previous week, Tue 8 – Mon 14 Dec: lead times 3h and 5h, no failures.
    candidate(bot, "1.0.0", local(8, 8))
    released(bot, "prod", "1.0.0", local(8, 11))
    candidate(bot, "1.0.1", local(10, 6))
    released(bot, "prod", "1.0.1", local(10, 11))
    # This week, Tue 15 – Mon 21 Dec.
    candidate(bot, "1.1.0", local(15, 8))
    released(bot, "staging", "1.1.0", local(15, 9), kind=ReleaseKind.DEPLOY)
    released(bot, "prod", "1.1.0", local(15, 10))
    candidate(bot, "1.1.1", local(16, 6))
    released(bot, "staging", "1.1.1", local(16, 8), kind=ReleaseKind.DEPLOY)
    bad = released(bot, "prod", "1.1.1", local(16, 10), thread_ts=ROLLED_BACK_THREAD)
    rolled_back(bot, bad, "1.1.0", requested=local(16, 10, 35), done=local(16, 11))
    candidate(bot, "1.1.2", local(16, 16))
    released(bot, "staging", "1.1.2", local(16, 17), kind=ReleaseKind.DEPLOY)
    released(bot, "prod", "1.1.2", local(17, 10))
    candidate(bot, "1.1.3", local(16, 4))
    released(bot, "staging", "1.1.3", local(16, 5), kind=ReleaseKind.DEPLOY)
    released(bot, "prod", "1.1.3", local(17, 14))
    candidate(bot, "1.1.4", local(18, 9))
    released(bot, "staging", "1.1.4", local(18, 10), state=ReleaseState.FAILED, kind=ReleaseKind.DEPLOY)
    return bad


# --- reading what Slack got -----------------------------------------------------------------------------
def block_text(blocks: list[dict[str, Any]]) -> str:
    """The visible text of sections, headers and context blocks, one block per line group."""
    out = []
    for block in blocks:
        if "text" in block:
            out.append(block["text"]["text"])
        for element in block.get("elements", []):
            if "text" in element and isinstance(element["text"], str):
                out.append(element["text"])
    return "\n".join(out)


def assert_message_blocks(blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= 50
    for block in Block.parse_all(blocks):
        assert block is not None
        block.validate_json()


async def ask_summary(bot: BotHarness, period: str) -> list[dict[str, Any]]:
    """`/release summary <period>` as RELEASER; the blocks of the ephemeral answer."""
    before = len(bot.slack.calls_to("response_url"))
    response = await bot.command(f"summary {period}")
    assert response.status == 200
    await bot.slack.wait_for("response_url", count=before + 1)
    await bot.settle()
    answer = [e for e in bot.slack.ephemerals if e.user == RELEASER][-1]
    return answer.blocks


def summary_posts(bot: BotHarness) -> list[Any]:
    return [
        c
        for c in bot.slack.calls_to("chat.postMessage")
        if c.args.get("channel") == CHANNEL and str(c.args.get("text", "")).startswith("Release summary")
    ]


# --- on demand ----------------------------------------------------------------------------------------------
async def test_weekly_summary_on_demand_shows_releases_failures_dora_and_closed_days(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(MONDAY_DEC_21.astimezone(UTC))) as bot:
        bad = december_history(bot)
        bot.store.set_freeze(
            "notify", "prod", local(23, 23, 59), "DB migration", ONCALL1, MONDAY_DEC_21.astimezone(UTC)
        )
        blocks = await ask_summary(bot, "week")
        assert_message_blocks(blocks)
        text = block_text(blocks)

        assert "Release summary — the week (Tue 15 Dec – Mon 21 Dec)" in text
        # Releases per service and environment, in pipeline order; the rollback counted on its own.
        assert "• *notify* — staging: 4 succeeded, 1 failed · prod: 3 succeeded, 1 rolled back, 1 rollback run" in text
        # The rolled-back release, with how fast service was restored and a link to its thread.
        link = f"https://slack.com/app_redirect?channel={CHANNEL}&message_ts={ROLLED_BACK_THREAD}"
        assert f"• #{bad.id} *notify* 1.1.1 (Wed 16 Dec 11:00 EST): rolled back, recovered in 25m" in text
        assert f"<{link}|thread>" in text
        # DORA, by hand: 4 deploys reached prod in 7 days; leads 2h, 5h, 18h, 34h; 1 of 4 failed;
        # the failure was detected at the rollback request (10:35) and recovered at 11:00.
        assert "*Deployment frequency*: 0.57/day (4 to production) — _high_ · ▲ better" in text
        assert "than the previous week (0.29/day)" in text
        assert "*Lead time for changes*: median 11h 30m, p90 1d 10h over 4 — _elite_ · ▼ worse" in text
        assert "than the previous week (4h)" in text
        assert "*Change failure rate*: 25% (1 of 4) — _low_ · ▼ worse than the previous week (0%)" in text
        assert "*Failed-deployment recovery time*: 25m — _elite_ · previous week: n/a" in text
        # Closed windows in the next 7 days (Tue 22 – Mon 28 Dec).
        assert "• Fri 25 Dec: Christmas Day (prod)" in text
        assert "• Mon 28 Dec: Boxing Day (observed) (prod)" in text
        assert "• Tue 22 Dec – Mon 28 Dec: End-of-year freeze (until Mon 4 Jan 2027) (prod)" in text
        assert "• Tue 22 Dec – Wed 23 Dec: notify prod frozen by <@U01ONCALL1>: DB migration" in text

        day = block_text(await ask_summary(bot, "day"))
        assert "Release summary — the day (Mon 21 Dec)" in day
        assert "No releases in this period." in day
        assert "Production failures" not in day


async def test_failures_link_to_the_thread_permalink_slack_gives(tmp_path: Path) -> None:
    """The bot's own notifier (the outbox over SlackNotifier) asks chat.getPermalink for the thread's link."""
    async with running_bot(tmp_path, clock=MutableClock(MONDAY_DEC_21.astimezone(UTC))) as bot:
        notifier = bot.engine.deps.notifier
        assert isinstance(notifier, OutboxNotifier) and type(notifier.slack) is SlackNotifier  # nothing patched
        thread = await notifier.post(CHANNEL, "notify 1.1.1 → prod", [])
        assert [m.text for m in bot.slack.messages(CHANNEL) if m.ts == thread] == ["notify 1.1.1 → prod"]
        candidate(bot, "1.1.1", local(16, 6))
        bad = released(bot, "prod", "1.1.1", local(16, 10), thread_ts=thread)
        rolled_back(bot, bad, "1.1.0", requested=local(16, 10, 35), done=local(16, 11))
        text = block_text(await ask_summary(bot, "week"))
        # The fake answers as Slack does: the workspace's domain, the channel, "p" and the ts without its dot.
        permalink_url = f"https://acme.slack.com/archives/{CHANNEL}/p{thread.replace('.', '')}"
        line = f"• #{bad.id} *notify* 1.1.1 (Wed 16 Dec 11:00 EST): rolled back, recovered in 25m"
        assert f"{line} · <{permalink_url}|thread>" in text.splitlines(), text
        assert "app_redirect" not in text
        assert [c.args["message_ts"] for c in bot.slack.calls_to("chat.getPermalink")] == [thread]


# --- the scheduled posts ------------------------------------------------------------------------------------
def test_summary_triggers_fire_in_the_configured_zone(tmp_path: Path) -> None:
    triggers = summary_triggers(parse_config(config_dict(tmp_path / "deploys.log")))
    winter = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tue 10:00 EST
    assert triggers["day"].get_next_fire_time(None, winter) == datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 14, 14, 0, tzinfo=UTC)  # Tue 10:00 EDT
    assert triggers["day"].get_next_fire_time(None, summer) == datetime(2026, 7, 14, 21, 0, tzinfo=UTC)
    # "fri 15:00": the Friday after, 15:00 EST = 20:00 UTC.
    assert triggers["week"].get_next_fire_time(None, winter) == datetime(2026, 11, 27, 20, 0, tzinfo=UTC)


async def test_the_running_bot_schedules_both_summaries_in_its_zone(bot: BotHarness) -> None:
    scheduler = bot.runtime.scheduler
    assert {"summary:day", "summary:week"} <= set(scheduler.job_ids())
    daily = scheduler.next_run("summary:day").astimezone(TORONTO)
    weekly = scheduler.next_run("summary:week").astimezone(TORONTO)
    assert (daily.hour, daily.minute) == (17, 0)
    assert (weekly.strftime("%a"), weekly.hour, weekly.minute) == ("Fri", 15, 0)


async def test_the_daily_summary_is_posted_once_per_day_even_across_a_restart(tmp_path: Path) -> None:
    clock = MutableClock(TUESDAY_NOV_24.astimezone(UTC))
    db = tmp_path / "releasebot.db"
    async with running_bot(tmp_path, clock=clock, db_path=db) as first:
        await first.runtime.summary_jobs["day"]()
        await first.runtime.summary_jobs["day"]()  # a second wake-up the same day
        posts = summary_posts(first)
        assert len(posts) == 1
        assert "Release summary — the day (Tue 24 Nov)" in posts[0].args["text"]
        assert_message_blocks(posts[0].args["blocks"])
        assert not first.slack.calls_to("files.getUploadURLExternal"), "the chart is for the weekly summary"

    async with running_bot(tmp_path, clock=clock, db_path=db) as second:
        await second.runtime.summary_jobs["day"]()
        await second.settle()
        assert summary_posts(second) == [], "the restarted bot knows today's summary went out"
        clock.advance(days=1)
        await second.runtime.summary_jobs["day"]()
        assert len(summary_posts(second)) == 1, "the next day gets its own"
    assert [e.subject for e in _audit(db) if e.action == "summary.posted"] == [
        "summary:day:2026-11-24",
        "summary:day:2026-11-25",
    ]


def _audit(db: Path) -> list[Any]:
    from bot.store import Store

    store = Store(db)
    try:
        return store.audit_since(None)
    finally:
        store.close()


async def test_a_slot_missed_while_down_is_posted_on_start_once(tmp_path: Path) -> None:
    db = tmp_path / "releasebot.db"
    clock = MutableClock(local(24, 17, 20, month=11).astimezone(UTC))  # 20 minutes after the 17:00 slot
    async with running_bot(tmp_path, clock=clock, db_path=db) as first:
        await first.settle()
        [post] = summary_posts(first)
        assert "the day (Tue 24 Nov)" in post.args["text"]
    clock.advance(minutes=10)
    async with running_bot(tmp_path, clock=clock, db_path=db) as second:
        await second.settle()
        assert summary_posts(second) == [], "posted before the restart, so not again"
    late = MutableClock(local(24, 19, 0, month=11).astimezone(UTC))  # two hours late: wait for tomorrow
    (tmp_path / "late").mkdir()
    async with running_bot(tmp_path / "late", clock=late) as third:
        await third.settle()
        assert summary_posts(third) == []


async def test_a_summary_that_could_not_be_posted_is_posted_by_the_next_attempt(bot: BotHarness) -> None:
    bot.slack.fail_next("chat.postMessage", status=200, error="not_in_channel")
    with pytest.raises(SlackApiError):
        await bot.runtime.summary_jobs["day"]()
    assert summary_posts(bot) == []
    await bot.runtime.summary_jobs["day"]()
    assert len(summary_posts(bot)) == 1


async def this_week_in_prod(bot: BotHarness) -> None:
    """Three prod releases in the week of Sat 21 – Fri 27 Nov."""
    for version, day, lead in (("1.3.0", 23, 3), ("1.3.1", 24, 6), ("1.3.2", 26, 20)):
        candidate(bot, version, local(day, 10, month=11) - timedelta(hours=lead))
        released(bot, "prod", version, local(day, 10, month=11))


async def test_the_weekly_summary_uploads_its_chart_into_its_thread_with_the_v2_flow(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(FRIDAY_NOV_27.astimezone(UTC))) as bot:
        await this_week_in_prod(bot)
        await bot.runtime.summary_jobs["week"]()
        [post] = summary_posts(bot)
        assert "the week (Sat 21 Nov – Fri 27 Nov)" in post.args["text"]
        assert "*Deployment frequency*: 0.43/day (3 to production)" in block_text(post.args["blocks"])
        summary_ts = post.response["ts"]

        # Slack's v2 flow: ask for an upload URL, POST the bytes there, then complete into the thread.
        methods = [c.method for c in bot.slack.calls if c.method in UPLOAD_FLOW]
        assert methods == list(UPLOAD_FLOW)
        [ask] = bot.slack.calls_to("files.getUploadURLExternal")
        [sent] = bot.slack.calls_to("upload")
        [complete] = bot.slack.calls_to("files.completeUploadExternal")
        assert ask.args["filename"] == "releases-week.png"
        assert int(ask.args["length"]) == sent.args["length"] > 0
        assert complete.args["channel_id"] == CHANNEL
        assert complete.args["thread_ts"] == summary_ts
        assert [f["id"] for f in complete.args["files"]] == [ask.response["file_id"]]
        assert complete.args["files"][0]["title"] == "Production releases and lead time"
        uploaded = bot.slack.uploads[ask.response["file_id"]]
        assert uploaded.completed and uploaded.shared_to == [CHANNEL]
        assert uploaded.data is not None
        width, height = assert_valid_png(uploaded.data)
        assert (width, height) == (800, 360)
        # The file shows up in the summary's thread.
        thread = bot.slack.thread(CHANNEL, summary_ts)
        assert [f["id"] for m in thread[1:] for f in m.files] == [ask.response["file_id"]]


UPLOAD_FLOW = ("files.getUploadURLExternal", "upload", "files.completeUploadExternal")


async def test_without_matplotlib_the_weekly_summary_posts_text_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.chart.chart_available", lambda: False)
    async with running_bot(tmp_path, clock=MutableClock(FRIDAY_NOV_27.astimezone(UTC))) as bot:
        await this_week_in_prod(bot)
        await bot.runtime.summary_jobs["week"]()
        [post] = summary_posts(bot)
        assert "*DORA (production)*" in block_text(post.args["blocks"])
        assert not [c for c in bot.slack.calls if c.method in UPLOAD_FLOW]
        assert bot.slack.uploads == {}
