"""Alerts that start while a release is still rolling out (here: during a canary's first verify pause) belong to
that release: its thread, an on-call ping, and per ``on_alert`` a Roll back now that stops the rollout as a failed
verify step does, or (auto_rollback) that stop pressed by the bot, or (notify) nothing but the message.

The real signed HTTP app, SQLite, the fake Slack and a fake Prometheus. The rollout's pause goes through the
engine's ``sleep`` port, replaced here by one that moves the test clock and, during the first pause, does what
the test says (post Alertmanager's body, click a button): the rollout is under way meanwhile, and nothing sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core.models import Release, ReleaseKind, ReleaseState
from tests.fakes.prometheus import FakePrometheus
from tests.harness import ONCALL1, ONCALL2, OUTSIDER, BotHarness, blocks_text, buttons, running_bot
from tests.test_alerts_api import TOKEN, TOKEN_ENV, alert_messages, alertmanager_body, post_alerts
from tests.test_scenario_checks import wall_clock
from tests.test_scenario_rollouts import canary_config, current, prod_deploys, ship

During = Callable[[BotHarness], Awaitable[None]]


@asynccontextmanager
async def canary_bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **prod: Any
) -> AsyncIterator[tuple[BotHarness, FakePrometheus]]:
    """A canary to prod (10, 50, 100 %, 2m pauses) whose checks would all pass: only an alert stops it."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    async with FakePrometheus(value=0.002) as prometheus:
        config = canary_config(tmp_path / "deploys.log", prometheus.url, **prod)
        config["alerts"] = {"token_env": TOKEN_ENV}
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            yield bot, prometheus


def during_first_pause(bot: BotHarness, during: During) -> None:
    """The rollout's pauses let their time pass on the test clock; the first one also runs ``during``."""
    pending = [during]

    async def sleep(seconds: float) -> None:
        bot.clock.advance(seconds=seconds)
        if pending:
            await pending.pop()(bot)

    bot.engine.rollouts.sleep = sleep


async def alert_fires(bot: BotHarness) -> None:
    response = await post_alerts(bot, alertmanager_body(starts=bot.clock.now(), service="notify", env="prod"))
    assert response.status == 200, await response.json()


def rolling(bot: BotHarness) -> Release:
    [release] = [r for r in bot.store.history("notify", "prod", 5) if r.version == "1.3.0"]
    return release


async def test_offer_rollback_during_a_canary_stops_the_rollout_like_a_failed_verify_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    async def alert_then_clicks(bot: BotHarness) -> None:
        await alert_fires(bot)
        [message] = alert_messages(bot)
        seen["message"] = message
        seen["state"] = rolling(bot).state
        value = buttons(message.blocks)["check_rollback"]
        await bot.click("check_rollback", value, user=OUTSIDER)
        seen["outsider"] = bot.last_reply(OUTSIDER)
        await bot.click("check_rollback", value, user=ONCALL1)
        await bot.click("check_rollback", value, user=ONCALL2)

    async with canary_bot(tmp_path, monkeypatch) as (bot, prometheus):
        during_first_pause(bot, alert_then_clicks)
        release = await ship(bot, "1.3.0")

        assert seen["state"] is ReleaseState.VERIFYING, "the alert came while the canary was at 10%"
        message = seen["message"]
        assert message.thread_ts == current(bot, release).thread_ts, "in the release's thread"
        text = blocks_text(message.blocks)
        assert f"<@{ONCALL1}>" in text and "during the rollout of 1.3.0" in text
        assert "stops the rollout after its current step" in text
        [incident] = bot.store.sql.query("SELECT * FROM incidents")
        assert incident["release_id"] == release.id
        assert buttons(message.blocks) == {"check_rollback": str(release.id), "alert_ack": str(incident["id"])}
        assert "you are not in oncall" in seen["outsider"]
        assert "Stopping the rollout of 1.3.0" in bot.last_reply(ONCALL1)
        assert "already requested" in bot.last_reply(ONCALL2), "one stop however often it is clicked"

        # The failed verify step's path: no more checks, traffic back to 0 %, the release failed.
        assert prod_deploys(bot) == ["notify 1.3.0 prod 10", "notify 1.3.0 prod 0"]
        assert prometheus.queries == [], "the verify step after the pause was not measured"
        stopped = current(bot, release)
        assert (stopped.state, stopped.weight, stopped.change_failure) == (ReleaseState.FAILED, 0, True)
        assert stopped.error == f"rollout stopped by {ONCALL1}"
        assert bot.store.env_state("notify", "prod").version == "1.2.2"  # type: ignore[union-attr]
        assert bot.store.lock_of("notify", "prod") is None
        assert not [r for r in bot.store.history("notify", "prod", 10) if r.kind is ReleaseKind.ROLLBACK]
        audit = [(e.actor, e.action) for e in bot.store.audit_since(None)]
        assert audit.count((ONCALL1, "rollout.stop_requested")) == 1
        assert (OUTSIDER, "rollout.stop_requested") not in audit

        # DORA: a change failure, attributed to this release and counted as from an alert.
        assert stopped.finished_at is not None
        period = (stopped.finished_at - timedelta(hours=1), stopped.finished_at + timedelta(hours=1))
        report, releases = await bot.engine.summaries.dora_between(*period)
        assert (report.change_failure_rate.failures, report.change_failure_rate.from_alerts) == (1, 1)
        [prod] = [r for r in releases if r.release_id == release.id]
        assert prod.failure_detected_at == incident_start(bot), "detected when the alert started"


def incident_start(bot: BotHarness) -> Any:
    from datetime import datetime

    row = bot.store.sql.one("SELECT started_at FROM incidents")
    assert row is not None
    return datetime.fromisoformat(row["started_at"])


async def test_auto_rollback_during_a_canary_stops_the_rollout_as_the_bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with canary_bot(tmp_path, monkeypatch, on_alert="auto_rollback") as (bot, prometheus):
        during_first_pause(bot, alert_fires)
        release = await ship(bot, "1.3.0")

        # No approval is waited for (prod's rollbacks need one): stopping a rollout is the verify step's abort.
        assert prod_deploys(bot) == ["notify 1.3.0 prod 10", "notify 1.3.0 prod 0"]
        stopped = current(bot, release)
        assert (stopped.state, stopped.weight) == (ReleaseState.FAILED, 0)
        assert stopped.error is not None and "alert fired during it" in stopped.error
        assert not [r for r in bot.store.history("notify", "prod", 10) if r.kind is ReleaseKind.ROLLBACK]
        [message] = alert_messages(bot)
        text = blocks_text(message.blocks)
        assert "the bot asked to stop its rollout" in text and f"<@{ONCALL1}>" in text
        assert set(buttons(message.blocks)) == {"alert_ack"}
        audit = [(e.actor, e.action) for e in bot.store.audit_since(None)]
        assert ("release-bot", "rollout.stop_requested") in audit
        assert bot.store.sql.one("SELECT release_id FROM incidents") == {"release_id": release.id}


async def test_notify_during_a_canary_pings_and_the_rollout_goes_on_but_counts_as_a_change_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with canary_bot(tmp_path, monkeypatch, on_alert="notify") as (bot, prometheus):
        during_first_pause(bot, alert_fires)
        release = await ship(bot, "1.3.0")

        assert prod_deploys(bot) == [f"notify 1.3.0 prod {w}" for w in (10, 50, 100)]
        live = current(bot, release)
        assert live.state is ReleaseState.SUCCEEDED
        [message] = alert_messages(bot)
        assert message.thread_ts == live.thread_ts
        assert f"<@{ONCALL1}>" in blocks_text(message.blocks)
        assert set(buttons(message.blocks)) == {"alert_ack"}
        assert bot.store.sql.one("SELECT release_id FROM incidents") == {"release_id": release.id}
        assert live.finished_at is not None
        period = (live.finished_at - timedelta(hours=1), live.finished_at + timedelta(hours=1))
        report, _ = await bot.engine.summaries.dora_between(*period)
        assert (report.change_failure_rate.failures, report.change_failure_rate.from_alerts) == (1, 1)


async def test_an_alert_before_the_rollout_started_is_not_the_releases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with canary_bot(tmp_path, monkeypatch) as (bot, prometheus):
        started = bot.clock.now()

        async def older_alert(bot: BotHarness) -> None:
            body = alertmanager_body(starts=started - timedelta(minutes=1), service="notify", env="prod")
            assert (await post_alerts(bot, body)).status == 200

        during_first_pause(bot, older_alert)
        release = await ship(bot, "1.3.0")
        assert current(bot, release).state is ReleaseState.SUCCEEDED
        assert bot.store.sql.one("SELECT release_id FROM incidents") == {"release_id": None}
        [message] = alert_messages(bot)
        assert message.thread_ts is None, "the service's channel: it began before this rollout did"
