"""Store round trips per user action stay few: the engine passes the rows it holds and batches what a
decision reads (one ``AsyncStore.unit``), instead of re-reading a release at every step.

Before this was measured (the engine as a mixin chain), `/release staging` made 38 engine round trips and
an Approve click 32; each asserted bound below is what a user's action may cost end to end. The Slack outbox's
background delivery of the action's messages is bounded per message queued (it was about 5 each).
"""

from __future__ import annotations

from pathlib import Path

from tests.harness import CHANNEL, ONCALL1, TUESDAY_10AM, MutableClock, buttons, config_dict, running_bot
from tests.round_trips import measure

PATH_BOUND = 15  # the engine's and the Slack edge's round trips, queueing its messages included
DELIVERY_PER_MESSAGE = 2  # the outbox takes a row and begins its attempt; records it sent and takes the next
VERSION = "1.2.3"


async def test_a_staging_release_end_to_end_costs_at_most_15_round_trips(tmp_path: Path) -> None:
    config = config_dict(tmp_path / "deploys.log")
    async with running_bot(tmp_path, clock=MutableClock(TUESDAY_10AM), config=config) as bot:
        bot.add_candidate(VERSION)
        measured = await measure(bot, "staging", lambda: bot.command(f"staging {VERSION}"))

        assert bot.deploys() == [f"notify {VERSION} staging 100"]
        assert any("is live in staging" in m.text for m in bot.slack.messages(CHANNEL))
        assert measured.path <= PATH_BOUND, measured.tally
        assert measured.delivery <= DELIVERY_PER_MESSAGE * measured.enqueued, measured.tally


async def test_an_approve_click_that_runs_a_release_costs_at_most_15_round_trips(tmp_path: Path) -> None:
    config = config_dict(tmp_path / "deploys.log", approvals={"required": 1, "from": ["oncall"]})
    async with running_bot(tmp_path, clock=MutableClock(TUESDAY_10AM), config=config) as bot:
        bot.add_candidate("1.2.2")
        bot.add_candidate(VERSION)
        bot.live("prod", "1.2.2")
        bot.live("staging", VERSION)
        await bot.command("prod")
        approve = [
            value
            for call in bot.slack.calls_to("chat.postMessage")
            if (value := buttons(call.args.get("blocks") or []).get("approval_approve")) is not None
        ]
        assert len(approve) == 1 and bot.deploys() == []

        measured = await measure(bot, "approve", lambda: bot.click("approval_approve", approve[0], user=ONCALL1))

        assert bot.deploys() == [f"notify {VERSION} prod 100"]
        assert measured.path <= PATH_BOUND, measured.tally
        assert measured.delivery <= DELIVERY_PER_MESSAGE * measured.enqueued, measured.tally
