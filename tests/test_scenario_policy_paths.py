"""The gates hold on every path: permissions from one table and admission asked again before the deploy.

Each test goes through the real HTTP app with signed commands and clicks, and shows both what the user
is told and that nothing was stored or deployed that should not have been.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.core.models import ApprovalState, ReleaseState
from tests.harness import ONCALL1, ONCALL2, OUTSIDER, RELEASER, BotHarness, MutableClock, config_dict, running_bot
from tests.test_scenario_gates import approval_ids, ask, press, ready_for_prod, world

SATURDAY_10AM = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
TUESDAY_10AM = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


async def test_someone_in_no_group_can_neither_lift_a_freeze_nor_lock(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(TUESDAY_10AM)) as bot:
        assert "frozen" in await ask(bot, "freeze prod until 2026-12-01 incident 42", user=ONCALL1)
        before = world(bot) | {"freezes": bot.count("adhoc_freezes"), "locks": bot.count("manual_locks")}
        answer = await ask(bot, "unfreeze prod", user=OUTSIDER)
        assert "only <@U01ONCALL1> or on-call can lift prod's freeze" in answer
        answer = await ask(bot, "lock prod mine now", user=OUTSIDER)
        assert "you may not lock prod: that needs membership of releasers, oncall" in answer
        assert world(bot) | {"freezes": bot.count("adhoc_freezes"), "locks": bot.count("manual_locks")} == before
        assert "no longer frozen" in await ask(bot, "unfreeze prod", user=ONCALL2)


async def test_an_approved_stale_plan_never_downgrades_prod(tmp_path: Path) -> None:
    """Break-glass for 1.2.3, then 1.2.4; approving 1.2.4 first makes the 1.2.3 request stale at its start."""
    async with running_bot(tmp_path, clock=MutableClock(SATURDAY_10AM)) as bot:
        ready_for_prod(bot, "1.2.3")
        bot.add_candidate("1.2.4")
        bot.live("staging", "1.2.4")
        assert "waiting for approval" in await ask(bot, "deploy 1.2.3 to prod --force outage")
        assert "waiting for approval" in await ask(bot, "deploy 1.2.4 to prod --force outage, take two")
        first, second = approval_ids(bot)
        await press(bot, "approval_approve", second, user=ONCALL1)
        assert bot.deploys() == ["notify 1.2.4 prod 100"]
        await press(bot, "approval_approve", first, user=ONCALL1)
        assert bot.deploys() == ["notify 1.2.4 prod 100"], "the stale plan deployed nothing"
        state = bot.store.env_state("notify", "prod")
        assert state is not None and state.version == "1.2.4"
        [stale] = [r for r in bot.store.history("notify", "prod", 10) if r.version == "1.2.3" and r.force_reason]
        assert stale.state is ReleaseState.CANCELLED
        thread = [c.args.get("text", "") for c in bot.slack.calls_to("chat.postMessage")]
        assert any("Not started" in t and "stale" in t and "now runs 1.2.4" in t for t in thread)


async def test_the_same_forced_request_twice_points_at_the_first(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(SATURDAY_10AM)) as bot:
        ready_for_prod(bot)
        assert "waiting for approval" in await ask(bot, "deploy 1.2.3 to prod --force outage")
        before = world(bot)
        again = await ask(bot, "deploy 1.2.3 to prod --force outage")
        assert "already waiting for approval (release #" in again
        assert world(bot) == before
        assert len(approval_ids(bot)) == 1


async def test_break_glass_adds_oncall_to_the_environments_own_approvers(tmp_path: Path) -> None:
    config = config_dict(tmp_path / "deploys.log", approvals={"required": 1, "from": ["releasers"]})
    config["groups"]["releasers"].append("U01LEAD")
    async with running_bot(tmp_path, clock=MutableClock(SATURDAY_10AM), config=config) as bot:
        ready_for_prod(bot)
        assert "waiting for approval" in await ask(bot, "prod --force outage")
        lead_request, oncall_request = approval_ids(bot)
        await press(bot, "approval_approve", oncall_request, user=ONCALL1)
        assert bot.deploys() == [], "on-call alone does not replace the lead's approval"
        await press(bot, "approval_approve", lead_request, user="U01LEAD")
        assert bot.deploys() == ["notify 1.2.3 prod 100"]


async def test_a_denied_half_of_a_break_glass_cancels_the_other(tmp_path: Path) -> None:
    config = config_dict(tmp_path / "deploys.log", approvals={"required": 1, "from": ["releasers"]})
    config["groups"]["releasers"].append("U01LEAD")
    async with running_bot(tmp_path, clock=MutableClock(SATURDAY_10AM), config=config) as bot:
        ready_for_prod(bot)
        await ask(bot, "prod --force outage")
        lead_request, oncall_request = approval_ids(bot)
        await bot.engine.approvals.deny(_actor("U01LEAD"), int(lead_request), "not today")
        await bot.settle()
        other = bot.store.get_approval(int(oncall_request))
        assert other is not None and other.state is ApprovalState.CANCELLED
        assert bot.deploys() == []


async def test_a_rollback_never_returns_to_a_version_that_was_rolled_back(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(TUESDAY_10AM)) as bot:
        bot.add_candidate("1.2.2")
        bot.add_candidate("1.2.3")
        bot.live("prod", "1.2.2")
        bot.live("prod", "1.2.3")
        bot.store.sql.execute("UPDATE releases SET state = 'rolled_back' WHERE version = '1.2.3'")
        bot.live("prod", "1.2.2")
        before = world(bot)
        answer = await ask(bot, "rollback prod to 1.2.3", user=ONCALL1)
        assert "1.2.3 was not healthy in prod" in answer and "`/release prod 1.2.3`" in answer
        assert world(bot) == before and bot.deploys() == []


def _actor(user: str) -> object:
    from bot.engine import Actor  # noqa: PLC0415

    return Actor(user=user)


assert RELEASER


async def _deny_click(bot: BotHarness, approval_id: str, user: str) -> str:
    """Click Deny as ``user``; the refusal Slack shows them (the click must not open the reason modal)."""
    before = len(bot.slack.calls_to("response_url"))
    response = await bot.click("approval_deny", approval_id, user=user)
    assert response.status == 200
    [*_, answer] = await bot.slack.wait_for("response_url", count=before + 1)
    await bot.settle()
    return str(answer.args.get("text", ""))


async def test_deny_is_refused_before_its_modal_opens_for_the_wrong_person_and_a_late_click(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path, clock=MutableClock(TUESDAY_10AM)) as bot:
        bot.add_candidate("1.2.2")
        bot.add_candidate("1.2.3")
        bot.live("prod", "1.2.2")
        bot.live("prod", "1.2.3")
        assert "waiting for on-call approval" in await ask(bot, "rollback prod")
        [approval] = approval_ids(bot)
        before = world(bot)
        assert "you are not in oncall, so you cannot decide this" in await _deny_click(bot, approval, OUTSIDER)
        assert "two-person rule" in await _deny_click(bot, approval, RELEASER)
        assert bot.slack.calls_to("views.open") == []
        assert world(bot) == before
        bot.clock.advance(hours=2)
        assert "expired" in await _deny_click(bot, approval, ONCALL1)
        assert bot.slack.calls_to("views.open") == []
        assert bot.deploys() == []
