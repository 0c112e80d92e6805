"""The event backlog on GET /metrics, per target and never by a webhook's full URL: pending deliveries, the age of
the oldest, and deliveries given up. Through the real HTTP app, real webhook receivers and real SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot import bootstrap
from bot.events.deliver import DeliveryPolicy
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.harness import config_dict as base_config
from tests.harness import running_bot
from tests.test_metrics import moved, scrape, value

SECRET = "whsec-test"
PENDING = "releasebot_event_deliveries_pending"
OLDEST = "releasebot_event_delivery_oldest_pending_seconds"
GIVEN_UP = "releasebot_event_deliveries_given_up_total"


class HeldWaits:
    """The worker's backoff sleep: holds every wait (until wake()); ``failed(n)`` awaits the n-th failed attempt."""

    def __init__(self) -> None:
        self.seen: list[float] = []
        self._changed = asyncio.Condition()

    async def __call__(self, seconds: float) -> None:
        async with self._changed:
            self.seen.append(seconds)
            self._changed.notify_all()
        await asyncio.Event().wait()

    async def failed(self, count: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.seen) >= count)


async def test_the_backlog_per_target_its_age_and_what_was_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits = HeldWaits()
    monkeypatch.setattr(bootstrap, "EVENTS_POLICY", DeliveryPolicy(sleep=waits))
    monkeypatch.setenv("RB_TEST_HOOK_SECRET", SECRET)
    async with WebhookReceiver(SECRET) as dash, WebhookReceiver(SECRET) as other:
        dash.down = other.down = True
        secret_url = other.url + "?token=s3cret"  # a receiver that takes its token in the query
        data = base_config(tmp_path / "deploys.log")
        data["events"] = {
            "webhooks": [
                {"url": dash.url, "secret_env": "RB_TEST_HOOK_SECRET", "name": "dash"},
                {"url": secret_url, "secret_env": "RB_TEST_HOOK_SECRET", "types": ["train.*"]},
            ]
        }
        other_label = other.url.removesuffix("/hook")  # scheme, host and port only
        async with running_bot(tmp_path, config=data) as bot:
            before = await scrape(bot.client)
            for n in range(3):
                bot.store.emit_event("train.departed", f"prod/train/{n}", {"env": "prod"}, bot.clock.now())
            bot.store.emit_event("approval.requested", "notify/prod/approval/1", {"service": "notify"}, bot.clock.now())
            backlog = await scrape(bot.client)
            bot.clock.advance(seconds=90)
            later = await scrape(bot.client)
            text = await (await bot.client.get("/metrics")).text()

            await waits.failed(2)  # both lanes tried once and now back off: a day passes, both give up
            bot.clock.advance(hours=25)
            bot.runtime.events.wake()
            await bot.runtime.events.drained()
            after = await scrape(bot.client)

    # Every configured target shows, at 0 while nothing waits.
    assert (PENDING, (("target", "dash"),)) in before and (PENDING, (("target", other_label),)) in before
    assert value(before, PENDING, target="dash") == 0 and value(before, OLDEST, target=other_label) == 0
    assert (value(backlog, PENDING, target="dash"), value(backlog, PENDING, target=other_label)) == (4, 3)
    assert value(backlog, OLDEST, target="dash") == 0, "written just now (the bot's clock)"
    assert (value(later, OLDEST, target="dash"), value(later, OLDEST, target=other_label)) == (90, 90)
    assert "s3cret" not in text and "/hook" not in text  # no path, no query: never the URL
    assert (value(after, PENDING, target="dash"), value(after, OLDEST, target=other_label)) == (0, 0)
    assert moved(before, after, GIVEN_UP, target="dash") == 4
    assert moved(before, after, GIVEN_UP, target=other_label) == 3
    assert dash.events == [] and other.events == []
