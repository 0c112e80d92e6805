"""Someone blocked by `/release lock` is told it is a manual lock: by whom, why, since when, how to lift it.

A lock held by a running release keeps its wording ("busy … try again once it finishes"): that lock
frees itself, a manual one never does. Everything goes through the real HTTP app and the fake Slack.
"""

from __future__ import annotations

from pathlib import Path

from bot.core.models import ReleaseKind, ReleaseState
from tests.harness import CHANNEL, ONCALL1, ONCALL2, RELEASER, BotHarness, config_dict, running_bot

TABLES = ("releases", "release_locks", "manual_locks", "audit", "env_state", "approvals")
# The harness clock: Tuesday 24 November 2026, 10:00 in Toronto.
MANUAL = (
    "notify prod has a manual lock — no release is running. <@U01ONCALL1> locked it since Tue 24 Nov 10:00 EST: "
    "schema migration &lt;!here&gt; &amp; reindex. To lift it, <@U01ONCALL1> or on-call runs `/release unlock prod`."
)


def ready_for_prod(bot: BotHarness) -> None:
    bot.add_candidate("1.2.2")
    bot.add_candidate("1.2.3")
    bot.live("prod", "1.2.2")
    bot.live("staging", "1.2.3")


def snapshot(bot: BotHarness) -> dict[str, int]:
    return {t: bot.count(t) for t in TABLES}


async def test_a_release_blocked_by_a_manual_lock_is_told_who_why_and_how_to_lift_it(bot: BotHarness) -> None:
    ready_for_prod(bot)
    await bot.command("lock prod schema migration <!here> & reindex", user=ONCALL1)
    before = snapshot(bot)

    await bot.command("prod", user=RELEASER)
    await bot.settle()

    answer = bot.last_reply(RELEASER)
    assert answer.startswith(MANUAL + "\n"), answer
    assert f"⛔ {MANUAL}" in answer
    assert "busy" not in answer and "once it finishes" not in answer
    assert snapshot(bot) == before, "a refused release changes nothing"
    assert bot.deploys() == []

    await bot.command("unlock prod", user=ONCALL2)  # on-call, not the holder, may lift it
    assert bot.count("manual_locks") == 0
    await bot.command("prod", user=RELEASER)
    await bot.settle()
    assert bot.deploys() == ["notify 1.2.3 prod 100"]


async def test_a_lock_held_by_a_running_release_keeps_its_wording(bot: BotHarness) -> None:
    ready_for_prod(bot)
    running = bot.store.create_release(  # queued and holding prod's lock, as a release about to deploy does
        service="notify",
        env="prod",
        version="1.2.3",
        kind=ReleaseKind.DEPLOY,
        state=ReleaseState.QUEUED,
        requested_by=ONCALL2,
        now=bot.clock.now(),
        take_lock=True,
    )
    before = snapshot(bot)

    await bot.command("prod", user=RELEASER)
    await bot.settle()

    assert bot.last_reply(RELEASER).startswith(
        "notify prod is busy: <@U01ONCALL2> holds it (release of 1.2.3 in progress, since Tue 24 Nov 10:00 EST). "
        "Try again once it finishes.\n"
    )
    assert snapshot(bot) == before
    assert bot.store.lock_of("notify", "prod") is not None and running.state is ReleaseState.QUEUED


async def test_an_approved_release_blocked_by_a_manual_lock_says_so_in_its_thread(tmp_path: Path) -> None:
    config = config_dict(tmp_path / "deploys.log", approvals={"required": 1, "from": ["oncall"]})
    async with running_bot(tmp_path, config=config) as bot:
        ready_for_prod(bot)
        await bot.command("prod", user=RELEASER)
        assert "is waiting for approval" in bot.last_reply(RELEASER)
        [release] = [r for r in bot.store.history("notify", "prod") if r.version == "1.2.3"]
        [approval] = bot.store.sql.query("SELECT id FROM approvals ORDER BY id DESC LIMIT 1")
        await bot.command("lock prod schema migration <!here> & reindex", user=ONCALL1)

        await bot.click("approval_approve", str(approval["id"]), user=ONCALL2)
        await bot.settle()

        thread = [m.text for m in bot.slack.messages(CHANNEL) if m.thread_ts == release.thread_ts]
        assert f"🚫 Approved, but {MANUAL}" in thread
        assert bot.store.get_release(release.id).state is ReleaseState.CANCELLED  # type: ignore[union-attr]
        assert bot.deploys() == []
