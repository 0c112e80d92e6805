"""Every path that starts a release asks admission right before it deploys (bot/policy/admission.py, through
Releases and Rollouts): a manual lock placed on prod after a release was asked for — or before it was due — stops
it on each path, with the reason told where its requester looks, and nothing deployed. A rollback, the safe
direction, passes the lock.

Paths: the slash command; an approval carried out later; a scheduled release at its time; a release train's
departure. (Retry after a crash: tests/test_kill_recovery.py, "has a manual lock".) Each runs through the real
HTTP app with signed commands and clicks.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.harness import ONCALL1, TUESDAY_10AM, BotHarness, MutableClock, config_dict, running_bot
from tests.test_scenario_gates import approval_ids, ask, press, ready_for_prod
from tests.test_scenario_trains import candidate, train_config

LEAD = "U01LEAD"
LOCKED = "has a manual lock"


async def lock_prod(bot: BotHarness) -> None:
    assert "locked" in (await ask(bot, "lock prod incident 42", user=ONCALL1)).lower()


def prod_deploys(bot: BotHarness) -> list[str]:
    return [line for line in bot.deploys() if " prod " in line]


def said(bot: BotHarness) -> str:
    """Everything the bot posted or answered (channel, threads, response_url, ephemerals)."""
    return "\n".join(str(c.args.get("text", "")) for c in bot.slack.calls)


async def test_the_slash_command_is_refused_at_once(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(TUESDAY_10AM)) as bot:
        ready_for_prod(bot)
        await lock_prod(bot)
        before = bot.count("releases")
        assert LOCKED in await ask(bot, "prod 1.2.3")
        assert bot.count("releases") == before and prod_deploys(bot) == []


async def test_an_approval_carried_out_after_the_lock_does_not_start(tmp_path: Path) -> None:
    config = config_dict(tmp_path / "deploys.log", approvals={"required": 1, "from": ["releasers"]})
    config["groups"]["releasers"].append(LEAD)
    async with running_bot(tmp_path, clock=MutableClock(TUESDAY_10AM), config=config) as bot:
        ready_for_prod(bot)
        assert "waiting for approval" in await ask(bot, "prod 1.2.3")
        await lock_prod(bot)
        [approval] = approval_ids(bot)
        await press(bot, "approval_approve", approval, user=LEAD)
        assert prod_deploys(bot) == []
        [release] = [r for r in bot.store.history("notify", "prod", 5) if r.version == "1.2.3"]
        assert release.state.value == "cancelled"
        assert LOCKED in said(bot)


async def test_a_scheduled_release_is_refused_at_its_time(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(TUESDAY_10AM)) as bot:
        ready_for_prod(bot)
        assert "Scheduled release #1" in await ask(bot, "prod 1.2.3 at 11:00")
        await lock_prod(bot)
        bot.clock.set(TUESDAY_10AM + timedelta(hours=1))
        assert await bot.engine.schedules.run_due() == 1
        await bot.settle()
        assert prod_deploys(bot) == []
        assert "did not start" in said(bot) and LOCKED in said(bot)


async def test_a_train_departure_leaves_the_locked_service_off_with_the_reason(tmp_path: Path) -> None:
    async with running_bot(
        tmp_path, clock=MutableClock(TUESDAY_10AM), config=train_config(tmp_path / "deploys.log")
    ) as bot:
        ready_for_prod(bot)
        candidate(bot.store, "notify", "1.2.3", TUESDAY_10AM)
        await lock_prod(bot)
        for when in (timedelta(hours=3, minutes=45), timedelta(hours=4)):  # the boarding call, the departure
            bot.clock.set(TUESDAY_10AM + when)
            await bot.engine.trains.run_due()
            await bot.settle()
        assert prod_deploys(bot) == []
        [row] = [b for b in bot.store.boardings(1) if b.service == "notify"]
        assert row.state != "boarded" and row.release_id is None
        assert LOCKED in said(bot)


async def test_a_rollback_passes_the_lock(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(TUESDAY_10AM)) as bot:
        ready_for_prod(bot)
        bot.live("prod", "1.2.3")
        await lock_prod(bot)
        await ask(bot, "rollback prod", user=ONCALL1)  # one of its approvers: rolls back at once
        assert bot.store.manual_lock("notify", "prod") is not None, "it passed the lock, which stays"
        assert prod_deploys(bot) == ["notify 1.2.2 prod 100"]
