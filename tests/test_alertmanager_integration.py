"""Real components: a Prometheus rule fires → a real Alertmanager posts its webhook → the bot's HTTP server → the
release thread shows it; the exporter recovers → the resolve edits that message.

The exporter (tests/prometheus_harness.py) is flipped to a 50% error ratio only after the release finished, so the
alert starts in the release's watch window. Prometheus evaluates every second and Alertmanager groups with a
second's wait; the test awaits the fake Slack receiving the post (a bounded wait on its event), never sleeps.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.models import ReleaseState
from tests.alertmanager_harness import AlertingPrometheus, RealAlertmanager, require_alertmanager
from tests.harness import CHANNEL, ONCALL1, MutableClock, blocks_text, buttons, running_bot
from tests.prometheus_harness import ControlledExporter, require_prometheus
from tests.test_alerts_api import TOKEN, TOKEN_ENV, alerts_config

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

RULES = json.dumps(
    {
        "groups": [
            {
                "name": "release-bot-test",
                "rules": [
                    {
                        "alert": "HighErrorRate",
                        "expr": 'sum by (service) (rate(http_requests_total{code=~"5.."}[5s]))'
                        " / sum by (service) (rate(http_requests_total[5s])) > 0.05",
                        "labels": {"env": "staging", "severity": "page"},
                        "annotations": {"summary": "5xx ratio above 5% for {{ $labels.service }}"},
                    }
                ],
            }
        ]
    }
)
WAIT = 60.0  # seconds: rate() over 5 s, evaluation and group_wait of a second each — and a busy CI machine


async def test_a_prometheus_rule_firing_reaches_the_release_thread_through_alertmanager(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_prometheus()
    require_alertmanager()
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    # The bot's clock a little behind the wall clock Prometheus stamps alerts with: the release finishes first.
    clock = MutableClock(datetime.now(UTC) - timedelta(seconds=30))
    async with (
        ControlledExporter() as exporter,
        running_bot(tmp_path, clock=clock, config=alerts_config(tmp_path / "deploys.log")) as bot,
    ):
        exporter.set_rate("notify", "200", 100)
        exporter.set_rate("notify", "500", 0)
        bot.add_candidate("1.4.2")
        await bot.command("staging 1.4.2")
        await bot.settle()
        [release] = bot.store.history("notify", "staging", 1)
        assert release.state is ReleaseState.SUCCEEDED and release.thread_ts is not None

        webhook = f"http://127.0.0.1:{bot.client.server.port}/api/v1/alerts"
        async with RealAlertmanager(webhook, TOKEN) as alertmanager:
            prometheus = AlertingPrometheus(
                [exporter.target], rules=RULES, alertmanager=f"127.0.0.1:{alertmanager.port}"
            )
            async with prometheus:
                await exporter.wait_for_scrapes(2)
                exporter.set_rate("notify", "500", 100)  # half the requests fail from now on

                def firing(call: object) -> bool:
                    return "Alert firing: HighErrorRate" in str(getattr(call, "args", {}).get("text"))

                try:
                    [post] = await bot.slack.wait_for("chat.postMessage", predicate=firing, timeout=WAIT)
                except TimeoutError:
                    pytest.fail(f"no alert reached Slack\nprometheus:\n{prometheus.log}\nam:\n{alertmanager.log}")
                assert post.args["thread_ts"] == release.thread_ts, "in the release's thread"
                [message] = [m for m in bot.slack.messages(CHANNEL) if m.text.startswith("🚨 Alert firing")]
                text = blocks_text(message.blocks)
                assert f"<@{ONCALL1}>" in text and "5xx ratio above 5% for notify" in text
                assert buttons(message.blocks)["check_rollback"] == str(release.id)
                incident = bot.store.sql.one("SELECT release_id, resolved_at FROM incidents")
                assert incident == {"release_id": release.id, "resolved_at": None}

                exporter.set_rate("notify", "500", 0)  # recovered: the rule stops, Alertmanager sends the resolve

                def resolved(call: object) -> bool:
                    return "Resolved: HighErrorRate" in str(getattr(call, "args", {}).get("text"))

                try:
                    await bot.slack.wait_for("chat.update", predicate=resolved, timeout=WAIT)
                except TimeoutError:
                    pytest.fail(f"no resolve reached Slack\nprometheus:\n{prometheus.log}\nam:\n{alertmanager.log}")
                [message] = [m for m in bot.slack.messages(CHANNEL) if m.ts == message.ts]
                assert message.text.startswith("✅ Resolved: HighErrorRate for notify staging")
                assert buttons(message.blocks) == {}
                assert bot.count("incidents") == 1, "Alertmanager's re-sends made no second incident"
