"""GET /metrics tells the truth: each metric an operator alerts on moves when the thing it counts happens.

Every test scrapes the real ``/metrics`` of the running bot before and after a real release, approval,
check or Slack write, and parses the exposition with prometheus_client's own parser. Counters and
histograms live in one process-wide registry that every test's bot shares, so those are compared as
deltas; the store-derived gauges (pending approvals, the outbox backlog) are read from this bot's own
database at scrape time, so their values are this test's alone.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bot import bootstrap
from bot.bootstrap import socket_app
from bot.config import parse_config
from bot.server import RUNTIME
from bot.settings import Settings
from bot.slack.outbox import OutboxNotifier, OutboxPolicy
from tests.fakes import FakeSlackWebAPI, FakeSocketModeServer
from tests.fakes.prometheus import FakePrometheus
from tests.fakes.slack_signing import slash_command_payload
from tests.harness import CHANNEL, ONCALL2, RELEASER, TUESDAY_10AM, BotHarness, MutableClock, running_bot
from tests.harness import config_dict as base_config
from tests.test_outbox import Waits
from tests.test_scenario_checks import checks_config, measure_at, release_to_prod, wall_clock

Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: TestClient[Any, Any]) -> Scrape:
    """Every sample of GET /metrics, keyed by sample name and labels."""
    response = await client.get("/metrics")
    assert response.status == 200
    samples: Scrape = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Scrape, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    """How far one sample moved between two scrapes (absent counts as 0, as for a new label set)."""
    return value(after, name, **labels) - value(before, name, **labels)


CANARY = {"type": "canary", "steps": [10, 50, 100], "pause": "2m"}


async def test_a_release_moves_releases_deploy_time_acks_checks_and_background_tasks(tmp_path: Path) -> None:
    async with FakePrometheus(value=0.002) as prometheus:
        config = checks_config(tmp_path / "deploys.log", prometheus.url, strategy=CANARY)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            bot.live("prod", "1.2.2")
            bot.add_candidate("1.3.0")
            await bot.command("staging 1.3.0")
            await bot.settle()
            # The canary's pauses wait on the test: the release is provably running while we scrape.
            paused, go = asyncio.Event(), asyncio.Event()

            async def held_pause(seconds: float) -> None:
                paused.set()
                await go.wait()

            bot.engine.rollouts.sleep = held_pause
            before = await scrape(bot.client)
            await bot.command("prod")
            await paused.wait()
            during = await scrape(bot.client)
            go.set()
            await bot.settle()
            after = await scrape(bot.client)

    assert moved(before, during, "releasebot_background_tasks") == 1, "the running release is a background task"
    assert moved(before, during, "releasebot_releases_total", env="prod", state="succeeded") == 0
    assert moved(before, after, "releasebot_background_tasks") == 0, "and it is gone once finished"
    assert moved(before, after, "releasebot_releases_total", env="prod", state="succeeded") == 1
    assert moved(before, after, "releasebot_releases_total", env="prod", state="failed") == 0
    deploys = {"env": "prod", "provider": "command"}
    assert moved(before, after, "releasebot_deploy_seconds_count", **deploys, action="deploy") == 1, "10 %"
    assert moved(before, after, "releasebot_deploy_seconds_count", **deploys, action="shift") == 2, "50 %, 100 %"
    assert moved(before, after, "releasebot_deploy_seconds_sum", **deploys, action="deploy") > 0
    assert moved(before, after, "releasebot_check_verdicts_total", env="prod", verdict="pass") == 2, "two verifies"
    assert moved(before, after, "releasebot_http_request_seconds_count", route="/slack/events") == 1, "one ack"


async def test_a_failed_deploy_counts_as_failed(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        bot.add_candidate("1.3.0")
        Path(f"{bot.log}.fail").write_text("registry said no\n")
        before = await scrape(bot.client)
        await bot.command("staging 1.3.0")
        await bot.settle()
        after = await scrape(bot.client)
    assert moved(before, after, "releasebot_releases_total", env="staging", state="failed") == 1
    assert moved(before, after, "releasebot_releases_total", env="staging", state="succeeded") == 0
    assert (
        moved(before, after, "releasebot_deploy_seconds_count", env="staging", provider="command", action="deploy") == 1
    )


async def test_pending_approvals_rise_with_a_request_and_fall_with_the_decision(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await release_to_prod(bot, "1.3.0")
        before = await scrape(bot.client)
        await bot.command("rollback prod", user=RELEASER)  # on-call must approve
        await bot.settle()
        waiting = await scrape(bot.client)
        [approval] = bot.store.pending_approvals("notify")
        await bot.click("approval_approve", str(approval.id), user=ONCALL2)
        await bot.settle()
        after = await scrape(bot.client)
    assert (value(before, "releasebot_pending_approvals"), value(waiting, "releasebot_pending_approvals")) == (0, 1)
    assert value(after, "releasebot_pending_approvals") == 0
    assert moved(before, after, "releasebot_releases_total", env="prod", state="rolled_back") == 1, "1.3.0"
    assert moved(before, after, "releasebot_releases_total", env="prod", state="succeeded") == 1, "the rollback"
    assert (
        moved(before, after, "releasebot_deploy_seconds_count", env="prod", provider="command", action="rollback") == 1
    )


async def test_check_verdicts_count_each_measurement_once_not_each_failed_attempt(tmp_path: Path) -> None:
    async with FakePrometheus(value=0.002) as prometheus:
        config = checks_config(tmp_path / "deploys.log", prometheus.url)
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            release = await release_to_prod(bot, "1.3.0")
            before = await scrape(bot.client)
            prometheus.down = True  # three failed attempts, then INCONCLUSIVE "metrics unavailable"
            await measure_at(bot, release, timedelta(minutes=5))
            outage = await scrape(bot.client)
            prometheus.down = False
            await measure_at(bot, release, timedelta(minutes=15))
            after = await scrape(bot.client)
    assert len(prometheus.queries) == 4
    assert moved(before, outage, "releasebot_check_verdicts_total", env="prod", verdict="inconclusive") == 1
    assert moved(before, outage, "releasebot_check_verdicts_total", env="prod", verdict="error") == 0
    assert moved(outage, after, "releasebot_check_verdicts_total", env="prod", verdict="pass") == 1


def outbox(bot: BotHarness) -> OutboxNotifier:
    found = bot.runtime.outbox
    assert isinstance(found, OutboxNotifier)
    return found


async def test_outbox_backlog_and_its_age_while_slack_rate_limits_then_drains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The outbox's backoff waits until the test wakes it: the backlog stays put while we look at it.
    monkeypatch.setattr(
        bootstrap, "OUTBOX_POLICY", OutboxPolicy(timeout=2.0, sleep=Waits(held=True), hand_back_after=5)
    )
    async with running_bot(tmp_path) as bot:
        before = await scrape(bot.client)
        bot.slack.fail_next("chat.postMessage", status=429, retry_after=30)
        bot.add_candidate("1.3.0")
        await bot.command("staging 1.3.0")
        await bot.settle()
        queued = bot.store.outbox_counts().get("pending", 0)
        backlog = await scrape(bot.client)
        bot.clock.advance(seconds=90)
        later = await scrape(bot.client)
        outbox(bot).wake()
        await outbox(bot).drained()
        after = await scrape(bot.client)
        assert any("is live in staging" in m.text for m in bot.slack.messages(CHANNEL))
    assert value(before, "releasebot_outbox_pending") == 0
    assert queued >= 3, "the parent, the thread's replies and the parent's edits wait behind the refused post"
    assert value(backlog, "releasebot_outbox_pending") == queued
    assert value(backlog, "releasebot_outbox_oldest_pending_seconds") == 0, "queued just now (the bot's clock)"
    assert value(later, "releasebot_outbox_oldest_pending_seconds") == 90
    assert (value(after, "releasebot_outbox_pending"), value(after, "releasebot_outbox_oldest_pending_seconds")) == (
        0,
        0,
    )


async def test_a_write_slack_refuses_is_given_up_and_counted(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        before = await scrape(bot.client)
        bot.slack.fail_next("chat.postMessage", status=200, error="channel_not_found")
        bot.add_candidate("1.3.0")
        await bot.command("staging 1.3.0")
        await bot.settle()
        after = await scrape(bot.client)
        dead = bot.store.outbox_counts().get("dead", 0)
    assert dead == 1
    assert moved(before, after, "releasebot_outbox_given_up_total") == 1


async def test_socket_mode_acks_are_timed_too(tmp_path: Path) -> None:
    async with FakeSlackWebAPI() as slack, FakeSocketModeServer(app_id=slack.app_id) as server:
        slack.attach_socket_mode(server)
        settings = Settings(slack_api_url=slack.base_url, db_path=tmp_path / "bot.db").model_copy(
            update={"slack_bot_token": SecretStr("xoxb-test"), "slack_app_token": SecretStr("xapp-test")}
        )
        config = parse_config(base_config(tmp_path / "deploys.log"))
        app = socket_app(settings, config, tmp_path, clock=MutableClock(TUESDAY_10AM))
        async with TestClient(TestServer(app)) as client:
            await server.wait_connected(5.0)
            before = await scrape(client)
            url = slack.new_response_url(channel=CHANNEL, user_id=RELEASER)
            payload = slash_command_payload(
                "/release", "history", user_id=RELEASER, channel_id=CHANNEL, response_url=url
            )
            assert "envelope_id" in await server.send_envelope("slash_commands", payload)
            await slack.wait_for("response_url")  # the listener's answer comes after the ack was timed
            after = await scrape(client)
            await client.server.app[RUNTIME].engine.drain()
    assert moved(before, after, "releasebot_http_request_seconds_count", route="socket_mode") == 1
    assert moved(before, after, "releasebot_http_request_seconds_count", route="/slack/events") == 0
    assert moved(before, after, "releasebot_slack_requests_total", kind="command") == 1
