"""Crash recovery: the app is stopped mid-deploy and started again on the same database and Slack.

The first app is stopped the way a crash leaves things: its in-flight work is abandoned (the deploy
task is cancelled, which kills the blocked deploy script) and nothing is written on the way down. The
second app must then find the release, mark it interrupted, free its lock and offer Retry / Roll back.
"""

from __future__ import annotations

import asyncio
import os
from io import TextIOWrapper
from pathlib import Path

from bot.core.models import ApprovalState, ReleaseKind, ReleaseState
from bot.store import Store
from tests.fakes import FakeSlackWebAPI
from tests.fakes.slack_api import RecordedCall
from tests.harness import (
    CHANNEL,
    ONCALL1,
    RELEASER,
    TUESDAY_10AM,
    BotHarness,
    MutableClock,
    app_on,
    buttons,
)


async def crash(bot: BotHarness) -> None:
    """Abandon everything in flight, as a killed process would (no state is written on the way down)."""
    await bot.engine.close()


async def answered(bot: BotHarness, before: int, count: int = 1) -> None:
    await bot.slack.wait_for("response_url", count=before + count)
    await bot.settle()


async def ask(bot: BotHarness, text: str, *, user: str = RELEASER) -> str:
    before = len(bot.slack.calls_to("response_url"))
    assert (await bot.command(text, user=user)).status == 200
    await answered(bot, before)
    return bot.last_reply(user)


async def click(bot: BotHarness, action_id: str, value: str, user: str) -> str:
    before = len(bot.slack.calls_to("response_url"))
    assert (await bot.click(action_id, value, user=user)).status == 200
    await answered(bot, before)
    return bot.last_reply(user)


def is_deploying(call: RecordedCall) -> bool:
    return str(call.args.get("text", "")).endswith(": deploying")


async def start_blocked_deploy(bot: BotHarness, text: str) -> TextIOWrapper:
    """Start a release whose deploy script then waits on the FIFO; return once it is waiting there."""
    fifo = Path(f"{bot.log}.block")
    os.mkfifo(fifo)
    before = len(bot.slack.calls_to("response_url"))
    assert (await bot.command(text)).status == 200
    await bot.slack.wait_for("response_url", count=before + 1)  # not settle(): the deploy is meant to hang
    assert "has started" in bot.last_reply()
    await bot.slack.wait_for("chat.update", predicate=is_deploying)
    # Opening a FIFO for writing returns only once the script has opened it to read: it is mid-deploy.
    return await asyncio.get_running_loop().run_in_executor(None, fifo.open, "w")


def stored(tmp_path: Path) -> Store:
    return Store(tmp_path / "releasebot.db")


async def test_a_release_killed_mid_deploy_is_interrupted_and_can_be_retried(tmp_path: Path) -> None:
    clock = MutableClock(TUESDAY_10AM)
    async with FakeSlackWebAPI() as slack:
        async with app_on(tmp_path, slack, clock) as bot:
            bot.add_candidate("1.2.3")
            writer = await start_blocked_deploy(bot, "staging 1.2.3")
            [release] = bot.store.history("notify", "staging")
            await crash(bot)
        writer.close()
        after_crash = stored(tmp_path)
        assert after_crash.get_release(release.id).state is ReleaseState.DEPLOYING  # type: ignore[union-attr]
        assert after_crash.lock_of("notify", "staging") is not None, "a crash leaves the lock behind"
        after_crash.close()
        Path(f"{tmp_path / 'deploys.log'}.block").unlink()  # deploys no longer wait from here on

        clock.advance(minutes=3)
        async with app_on(tmp_path, slack, clock) as bot:
            interrupted = bot.store.get_release(release.id)
            assert interrupted is not None and interrupted.state is ReleaseState.INTERRUPTED
            assert bot.store.lock_of("notify", "staging") is None
            thread = slack.thread(CHANNEL, str(interrupted.thread_ts))
            parent, *replies = thread
            assert parent.text.endswith(": interrupted"), "the parent message shows the new state"
            [offer] = [m for m in replies if "release_retry" in buttons(m.blocks)]
            assert buttons(offer.blocks) == {"release_retry": str(release.id), "release_rollback": str(release.id)}
            assert "bot restarted" in offer.text + str(offer.blocks)
            assert any(e.action == "release.interrupted" for e in bot.store.audit_since(None))

            answer = await click(bot, "release_retry", str(release.id), RELEASER)
            assert "has started" in answer, answer
            assert bot.deploys() == ["notify 1.2.3 staging 100", "notify 1.2.3 staging 100"]
            state = bot.store.env_state("notify", "staging")
            assert state is not None and state.version == "1.2.3"
            retried = bot.store.history("notify", "staging", 1)[0]
            assert retried.id != release.id and retried.state is ReleaseState.SUCCEEDED
            # A second click on Retry starts nothing more.
            assert "already started" in await click(bot, "release_retry", str(release.id), ONCALL1)
            assert len(bot.deploys()) == 2


async def test_roll_back_of_an_interrupted_release_asks_on_call_then_runs(tmp_path: Path) -> None:
    clock = MutableClock(TUESDAY_10AM)
    async with FakeSlackWebAPI() as slack:
        async with app_on(tmp_path, slack, clock) as bot:
            bot.add_candidate("1.2.3")
            bot.live("staging", "1.2.3")
            bot.live("prod", "1.2.2")
            writer = await start_blocked_deploy(bot, "prod")
            [release] = [r for r in bot.store.history("notify", "prod") if r.version == "1.2.3"]
            await crash(bot)
        writer.close()
        Path(f"{tmp_path / 'deploys.log'}.block").unlink()

        async with app_on(tmp_path, slack, clock) as bot:
            assert bot.store.get_release(release.id).state is ReleaseState.INTERRUPTED  # type: ignore[union-attr]
            answer = await click(bot, "release_rollback", str(release.id), RELEASER)
            assert "waiting for on-call approval" in answer
            assert "already requested" in await click(bot, "release_rollback", str(release.id), ONCALL1)
            [approval] = bot.store.pending_approvals()
            assert approval.subject["release_id"] != release.id
            assert "approved. on it." in (await click(bot, "approval_approve", str(approval.id), ONCALL1)).lower()
            assert bot.deploys() == ["notify 1.2.3 prod 100", "notify 1.2.2 prod 100"]
            rolled_back = bot.store.get_release(release.id)
            assert rolled_back is not None and rolled_back.state is ReleaseState.ROLLED_BACK
            assert rolled_back.change_failure is True
            state = bot.store.env_state("notify", "prod")
            assert state is not None and state.version == "1.2.2"
            assert "rolled_back; nothing to do" in await click(bot, "release_rollback", str(release.id), ONCALL1)
            assert len(bot.deploys()) == 2


async def test_approvals_that_lapsed_while_down_expire_on_start(tmp_path: Path) -> None:
    clock = MutableClock(TUESDAY_10AM)
    async with FakeSlackWebAPI() as slack:
        async with app_on(tmp_path, slack, clock) as bot:
            bot.live("prod", "1.2.2")
            bot.live("prod", "1.2.3")
            assert "waiting for on-call approval" in await ask(bot, "rollback prod")
            [approval] = bot.store.pending_approvals()
        clock.advance(minutes=45)
        async with app_on(tmp_path, slack, clock) as bot:
            expired = bot.store.get_approval(approval.id)
            assert expired is not None and expired.state is ApprovalState.EXPIRED
            message = slack.message(CHANNEL, str(approval.message_ts))
            assert not buttons(message.blocks) and "Expired" in str(message.blocks)
            rollback = bot.store.get_release(int(approval.subject["release_id"]))
            assert rollback is not None and rollback.state is ReleaseState.CANCELLED
            assert rollback.kind is ReleaseKind.ROLLBACK
            assert [e.actor for e in bot.store.audit_since(None) if e.action == "approval.expired"] == ["release-bot"]
            assert "expired" in await click(bot, "approval_approve", str(approval.id), ONCALL1)
            assert bot.deploys() == []


async def test_a_pending_approval_survives_a_restart_and_can_still_be_approved(tmp_path: Path) -> None:
    clock = MutableClock(TUESDAY_10AM)
    async with FakeSlackWebAPI() as slack:
        async with app_on(tmp_path, slack, clock) as bot:
            bot.live("prod", "1.2.2")
            bot.live("prod", "1.2.3")
            await ask(bot, "rollback prod")
            [approval] = bot.store.pending_approvals()
        clock.advance(minutes=10)
        async with app_on(tmp_path, slack, clock) as bot:
            scheduler = bot.runtime.scheduler
            assert scheduler is not None and scheduler.next_run(f"approval-expiry:{approval.id}") is not None
            assert "Approved. On it." in await click(bot, "approval_approve", str(approval.id), ONCALL1)
            assert bot.deploys() == ["notify 1.2.2 prod 100"]
            assert not buttons(slack.message(CHANNEL, str(approval.message_ts)).blocks)
