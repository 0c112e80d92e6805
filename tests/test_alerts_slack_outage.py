"""Slack unreachable when an alert first arrives: the incident is stored and its message is not lost.

The notifier is the outbox (bot/slack/outbox.py): a post Slack does not take is queued and the caller gets a
placeholder ts, which the incident keeps. The message goes up once Slack is back, later edits follow it, and the
outbox swaps the incident's placeholder for the real ts (bot/store/outbox.py), so an edit still reaches the message
after the outbox has forgotten its sent rows. The real HTTP app, SQLite, the fake Slack failing then recovering.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.store.outbox import placeholder_id
from tests.harness import ONCALL1, blocks_text
from tests.test_alerts_api import alert_messages, alerting_bot, alertmanager_body, post_alerts, released
from tests.test_outbox import Waits
from tests.test_scenario_slack_faults import outbox, use_policy


async def test_an_alert_arriving_while_slack_is_down_is_posted_once_slack_is_back_and_edits_still_reach_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_policy(monkeypatch, Waits())
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        release_id = await released(bot)
        await outbox(bot).drained()
        bot.clock.advance(minutes=3)
        starts = bot.clock.now()
        firing = alertmanager_body(starts=starts, service="notify", env="prod")

        bot.slack.set_down(True)
        response = await post_alerts(bot, firing)
        assert response.status == 200, "Alertmanager's call is answered: the incident is stored"
        [incident] = bot.store.sql.query("SELECT id, release_id, ts FROM incidents")
        assert incident["release_id"] == release_id
        assert placeholder_id(incident["ts"]) is not None, "Slack did not take it: the outbox holds it"
        assert alert_messages(bot) == []

        bot.slack.set_down(False)
        await outbox(bot).drained()
        [message] = alert_messages(bot)
        assert f"<@{ONCALL1}>" in blocks_text(message.blocks), "posted (with its ping) once Slack was back"

        # Alertmanager re-sends the firing alert (every repeat_interval): no news; the placeholder was swapped.
        assert (await post_alerts(bot, firing)).status == 200
        assert bot.store.sql.one("SELECT ts FROM incidents") == {"ts": message.ts}
        # A week on, the outbox forgets its sent rows; the resolve still edits the one message.
        bot.store.outbox_prune(bot.clock.now() + timedelta(days=8))
        bot.clock.advance(minutes=9)
        resolved = alertmanager_body("resolved", starts=starts, ends=bot.clock.now(), service="notify", env="prod")
        assert (await post_alerts(bot, resolved)).status == 200
        await outbox(bot).drained()
        [message] = alert_messages(bot)
        assert message.text.startswith("✅ Resolved: HighErrorRate for notify prod (lasted 9m)")
        posts = [c for c in bot.slack.calls_to("chat.postMessage") if "HighErrorRate" in str(c.args.get("text"))]
        assert len(posts) == 1, "one message, edited: never posted twice"
        assert bot.store.sql.query("SELECT id FROM outbox WHERE state = 'dead'") == []


async def test_an_incident_recorded_but_never_posted_is_posted_at_the_next_start_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot stopped between the webhook's transaction and its post: the next start posts the message."""
    from bot.alerts_models import CheckedAlert

    async with alerting_bot(tmp_path, monkeypatch) as bot:
        release_id = await released(bot)
        await outbox(bot).drained()
        bot.clock.advance(minutes=3)
        firing = CheckedAlert("fp-crash", bot.clock.now(), None, True, "notify", "prod", "HighErrorRate", "5xx up")
        watch = {name: env.watch for name, env in bot.config.environments.items()}
        bot.store.ingest_alerts([firing], watch, bot.clock.now())  # recorded; then the process died
        assert alert_messages(bot) == []

        await bot.engine.alerts.recover()  # what Engine.start runs after the releases are recovered
        await outbox(bot).drained()
        [message] = alert_messages(bot)
        assert f"<@{ONCALL1}>" in blocks_text(message.blocks), "posted in the release's thread, with its ping"
        assert bot.store.sql.one("SELECT release_id, ts FROM incidents") == {"release_id": release_id, "ts": message.ts}

        await bot.engine.alerts.recover()  # a second start: nothing left to post
        await outbox(bot).drained()
        assert len(alert_messages(bot)) == 1
