"""Alertmanager's webhook end to end: the real signed HTTP app, SQLite and a fake Slack speaking Slack's API.

Bodies are Alertmanager's own (tests/data/alertmanager/, captured from prometheus-alertmanager 0.25 posting to a
receiver) with their times, labels and fingerprints set per test. What the tests read is what Slack would show
(the fake keeps every message with its edits) and what the store holds.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse

from bot.config import parse_config
from bot.core.models import ReleaseState
from bot.http_auth import environment_problems
from tests.fakes.slack_state import Message
from tests.harness import (
    CHANNEL,
    ONCALL1,
    ONCALL2,
    OUTSIDER,
    RELEASER,
    BotHarness,
    blocks_text,
    buttons,
    config_dict,
    running_bot,
    ship_to_prod,
)

DATA = Path(__file__).parent / "data" / "alertmanager"
TOKEN_ENV = "RELEASEBOT_TEST_ALERTS_TOKEN"
TOKEN = "alertmanager-test-token"


def alertmanager_body(
    status: str = "firing",
    *,
    starts: datetime,
    ends: datetime | None = None,
    fingerprint: str = "f333148002d3e18e",
    name: str = "HighErrorRate",
    **labels: str,
) -> dict[str, Any]:
    """Alertmanager's captured body (one alert) with this test's times, labels and fingerprint."""
    body: dict[str, Any] = json.loads((DATA / f"{'firing' if status == 'firing' else 'resolved'}.json").read_text())
    alert = body["alerts"][0]
    alert["startsAt"] = starts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    alert["endsAt"] = ends.strftime("%Y-%m-%dT%H:%M:%SZ") if ends else "0001-01-01T00:00:00Z"
    alert["fingerprint"] = fingerprint
    alert["labels"].update({"alertname": name, **labels})
    for key in [k for k, v in labels.items() if v == ""]:
        del alert["labels"][key]
    return body


def grouped(*bodies: dict[str, Any]) -> dict[str, Any]:
    """One notification carrying the alerts of several bodies (Alertmanager's grouping)."""
    out = copy.deepcopy(bodies[0])
    out["alerts"] = [alert for body in bodies for alert in body["alerts"]]
    return out


def alerts_config(log: Path, **prod: Any) -> dict[str, Any]:
    config = config_dict(log, **prod)
    config["alerts"] = {"token_env": TOKEN_ENV}
    return config


@asynccontextmanager
async def alerting_bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **prod: Any) -> AsyncIterator[BotHarness]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    async with running_bot(tmp_path, config=alerts_config(tmp_path / "deploys.log", **prod)) as bot:
        yield bot


async def post_alerts(bot: BotHarness, body: object, *, token: str | None = TOKEN) -> ClientResponse:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await bot.client.post("/api/v1/alerts", data=data, headers=headers)


def alert_messages(bot: BotHarness) -> list[Message]:
    """The messages about alerts, as users see them now (thread replies and channel posts)."""
    return [m for m in bot.slack.messages(CHANNEL) if "Alert firing" in m.text or "Resolved:" in m.text]


def nothing_stored(bot: BotHarness) -> bool:
    return bot.count("alerts") == 0 and bot.count("incidents") == 0


async def released(bot: BotHarness, version: str = "1.4.2") -> int:
    """``version`` live in prod (finished now, on the harness's clock); its release id."""
    release = await ship_to_prod(bot, version)
    assert release.state is ReleaseState.SUCCEEDED, release
    return release.id


# --- refusals: 401 and 400/422, nothing stored, nothing posted


async def test_unauthenticated_posts_get_401_and_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        body = alertmanager_body(starts=bot.clock.now(), service="notify", env="prod")
        posts = len(bot.slack.calls_to("chat.postMessage"))
        for token in (None, "wrong-token", ""):
            response = await post_alerts(bot, body, token=token)
            assert response.status == 401, token
            assert (await response.json())["field"] == "Authorization"
        # The CI API's token is not the alerts token.
        response = await post_alerts(bot, body, token="test-api-token")
        assert response.status == 401
        assert nothing_stored(bot)
        assert len(bot.slack.calls_to("chat.postMessage")) == posts


def _without_fingerprint(body: dict[str, Any]) -> dict[str, Any]:
    del body["alerts"][0]["fingerprint"]
    return body


def _version(body: dict[str, Any], version: object) -> dict[str, Any]:
    body["version"] = version
    return body


@pytest.mark.parametrize(
    ("change", "status", "field", "words"),
    [
        (lambda b: _version(b, "3"), 422, "version", "unsupported webhook version '3'"),
        (lambda b: _version(b, 4), 422, "version", "expected a string"),
        (lambda b: _without_fingerprint(b), 422, "alerts[0].fingerprint", "required"),
        (lambda b: {**b, "alerts": "none"}, 422, "alerts", "list"),
        (lambda b: {**b, "status": "pending"}, 422, "status", "must be one of"),
    ],
    ids=["wrong-version", "version-not-a-string", "no-fingerprint", "alerts-not-a-list", "bad-status"],
)
async def test_bad_bodies_get_422_naming_the_field_and_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: Any, status: int, field: str, words: str
) -> None:
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        await released(bot)
        posts = len(bot.slack.calls_to("chat.postMessage"))
        body = change(alertmanager_body(starts=bot.clock.now(), service="notify", env="prod"))
        response = await post_alerts(bot, body)
        answer = await response.json()
        assert response.status == status, answer
        assert answer["field"] == field
        assert words in answer["error"] and answer["error"].startswith(f"{field}: ")
        assert nothing_stored(bot)
        assert len(bot.slack.calls_to("chat.postMessage")) == posts


@pytest.mark.parametrize(
    ("labels", "field", "words"),
    [
        ({"service": ""}, "alerts[1].labels.service", "required: the label naming the service"),
        ({"env": ""}, "alerts[1].labels.env", "required: the label naming the environment"),
        ({"service": "billing"}, "alerts[1].labels.service", "unknown service 'billing' (known: notify)"),
        ({"env": "qa"}, "alerts[1].labels.env", "'qa' is not an environment of notify (staging, prod)"),
    ],
    ids=["no-service-label", "no-env-label", "unknown-service", "unknown-env"],
)
async def test_an_alert_naming_no_known_service_or_env_is_skipped_and_the_others_are_processed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    labels: dict[str, str],
    field: str,
    words: str,
) -> None:
    """Alertmanager does not retry a 4xx: refusing the body would lose the good alert (and resolve) beside it."""
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        release_id = await released(bot)
        bot.clock.advance(minutes=2)
        starts = bot.clock.now()
        good = alertmanager_body(starts=starts, service="notify", env="prod")
        bad_labels = {"service": "notify", "env": "prod", **labels}
        bad = alertmanager_body(starts=starts, fingerprint="0000000000000bad", **bad_labels)
        skipped = [{"fingerprint": "0000000000000bad", "reason": f"{field}: {words}"}]

        response = await post_alerts(bot, grouped(good, bad))
        answer = await response.json()
        assert response.status == 200, answer
        [incident] = bot.store.sql.query("SELECT id, release_id, resolved_at FROM incidents")
        assert answer == {
            "alerts": 2,
            "incidents": [{"id": incident["id"], "release_id": release_id, "changes": ["opened"]}],
            "skipped": skipped,
        }
        assert [r["fingerprint"] for r in bot.store.sql.query("SELECT fingerprint FROM alerts")] == [
            "f333148002d3e18e"
        ], "nothing of the skipped alert is stored"
        [message] = alert_messages(bot)
        assert "HighErrorRate" in message.text
        assert f"alert 0000000000000bad skipped (nothing stored): {field}: {words}" in caplog.text

        # The resolve grouped with the skipped alert's resolve is processed too.
        bot.clock.advance(minutes=4)
        ended = bot.clock.now()
        resolved = grouped(
            alertmanager_body("resolved", starts=starts, ends=ended, service="notify", env="prod"),
            alertmanager_body("resolved", starts=starts, ends=ended, fingerprint="0000000000000bad", **bad_labels),
        )
        response = await post_alerts(bot, resolved)
        answer = await response.json()
        assert response.status == 200, answer
        assert answer["incidents"] == [{"id": incident["id"], "release_id": release_id, "changes": ["resolved"]}]
        assert answer["skipped"] == skipped
        assert alert_messages(bot)[0].text.startswith("✅ Resolved: HighErrorRate for notify prod")
        assert bot.count("alerts") == 1 and bot.count("incidents") == 1


async def test_a_body_whose_every_alert_is_skipped_is_accepted_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        await released(bot)
        posts = len(bot.slack.calls_to("chat.postMessage"))
        body = alertmanager_body(starts=bot.clock.now(), service="billing", env="prod")
        response = await post_alerts(bot, body)
        answer = await response.json()
        assert response.status == 200, answer
        assert answer["incidents"] == [] and [s["fingerprint"] for s in answer["skipped"]] == ["f333148002d3e18e"]
        assert nothing_stored(bot)
        assert len(bot.slack.calls_to("chat.postMessage")) == posts


async def test_a_body_that_is_not_json_gets_400(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        response = await post_alerts(bot, b'{"version": "4", "alerts": [')
        answer = await response.json()
        assert response.status == 400 and answer["field"] == "body", answer
        assert nothing_stored(bot)


# --- a firing alert in a release's watch window


async def test_a_firing_alert_in_the_watch_window_replies_in_the_thread_pings_oncall_and_offers_buttons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        release_id = await released(bot)
        release = bot.store.get_release(release_id)
        assert release is not None and release.thread_ts is not None
        bot.clock.advance(minutes=7)
        response = await post_alerts(bot, alertmanager_body(starts=bot.clock.now(), service="notify", env="prod"))
        answer = await response.json()
        assert response.status == 200, answer
        [message] = alert_messages(bot)
        assert message.thread_ts == release.thread_ts, "in the release's thread"
        text = blocks_text(message.blocks)
        assert f"<@{ONCALL1}>" in text and f"<@{ONCALL2}>" in text, "on-call is pinged"
        assert "HighErrorRate" in text and "5xx ratio above 5% for notify" in text
        assert "in the watch window of 1.4.2, 7 min after it finished" in text
        [incident] = bot.store.sql.query("SELECT * FROM incidents")
        assert buttons(message.blocks) == {"check_rollback": str(release_id), "alert_ack": str(incident["id"])}
        assert incident["release_id"] == release_id and incident["resolved_at"] is None
        assert answer["incidents"] == [{"id": incident["id"], "release_id": release_id, "changes": ["opened"]}]
        assert answer["skipped"] == []
        audit = [e.action for e in bot.store.audit_since(None)]
        assert "incident.opened" in audit


async def test_repeated_and_grouped_notifications_have_one_effect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        await released(bot)
        bot.clock.advance(minutes=3)
        first = alertmanager_body(starts=bot.clock.now(), service="notify", env="prod")
        for _ in range(3):  # Alertmanager re-sends at every group_interval
            assert (await post_alerts(bot, first)).status == 200
        # The same alert grouped with another of the same service (a second receiver group, or a wider group_by).
        second = alertmanager_body(
            starts=bot.clock.now(), fingerprint="a1b2c3d4e5f60718", name="HighLatency", service="notify", env="prod"
        )
        assert (await post_alerts(bot, grouped(first, second))).status == 200
        assert (await post_alerts(bot, grouped(second, first))).status == 200
        [message] = alert_messages(bot)
        posts = [c for c in bot.slack.calls_to("chat.postMessage") if "Alert firing" in str(c.args.get("text"))]
        assert len(posts) == 1, "one message for the incident"
        assert len(message.edits) == 1, "edited once, when the second alert joined"
        assert "HighErrorRate" in message.text and "HighLatency" in message.text
        pings = [c for c in bot.slack.calls_to("chat.postMessage") if f"<@{ONCALL1}>" in json.dumps(c.args)]
        assert len(pings) == 1, "on-call pinged once"
        assert bot.count("incidents") == 1 and bot.count("alerts") == 2


async def test_resolved_alerts_update_the_message_and_resolve_the_incident(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        await released(bot)
        bot.clock.advance(minutes=3)
        starts = bot.clock.now()
        other = "a1b2c3d4e5f60718"
        await post_alerts(
            bot,
            grouped(
                alertmanager_body(starts=starts, service="notify", env="prod"),
                alertmanager_body(starts=starts, fingerprint=other, name="HighLatency", service="notify", env="prod"),
            ),
        )
        bot.clock.advance(minutes=12)
        ended = bot.clock.now()
        # One of two ends: the message says so; the incident goes on.
        await post_alerts(bot, alertmanager_body("resolved", starts=starts, ends=ended, service="notify", env="prod"))
        [message] = alert_messages(bot)
        assert "Alert firing" in message.text and "resolved (fired" in blocks_text(message.blocks)
        assert bot.store.sql.one("SELECT resolved_at FROM incidents") == {"resolved_at": None}
        # The last one ends: resolved, buttons gone.
        last = alertmanager_body(
            "resolved", starts=starts, ends=ended, fingerprint=other, name="HighLatency", service="notify", env="prod"
        )
        await post_alerts(bot, last)
        await post_alerts(bot, last)  # a repeat of the resolve changes nothing more
        [message] = alert_messages(bot)
        assert message.text.startswith("✅ Resolved: HighErrorRate, HighLatency for notify prod (lasted 12m)")
        assert buttons(message.blocks) == {}
        assert len(message.edits) == 2
        incident = bot.store.sql.one("SELECT started_at, resolved_at FROM incidents")
        assert incident is not None and datetime.fromisoformat(incident["resolved_at"]) == ended
        assert "incident.resolved" in [e.action for e in bot.store.audit_since(None)]


async def test_an_alert_outside_every_watch_window_goes_to_the_channel_with_the_last_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        await released(bot)
        bot.clock.advance(minutes=37)  # prod's watch window is 30 minutes (the default)
        await post_alerts(bot, alertmanager_body(starts=bot.clock.now(), service="notify", env="prod"))
        [message] = alert_messages(bot)
        assert message.thread_ts is None, "a channel post, not a thread reply"
        text = blocks_text(message.blocks)
        assert "last release: 1.4.2, 37 min ago" in text
        assert f"<@{ONCALL1}>" not in text, "no page outside a watch window: Alertmanager's own routes page"
        assert set(buttons(message.blocks)) == {"alert_ack"}, "nothing to roll back: no release is suspected"
        assert bot.store.sql.one("SELECT release_id FROM incidents") == {"release_id": None}


async def test_a_longer_watch_window_keeps_the_alert_with_the_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(tmp_path, monkeypatch, watch="1h") as bot:
        release_id = await released(bot)
        bot.clock.advance(minutes=37)
        await post_alerts(bot, alertmanager_body(starts=bot.clock.now(), service="notify", env="prod"))
        assert bot.store.sql.one("SELECT release_id FROM incidents") == {"release_id": release_id}


# --- on_alert modes and the buttons


async def test_roll_back_now_under_an_alert_is_the_checks_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        release_id = await released(bot)
        bot.clock.advance(minutes=2)
        await post_alerts(bot, alertmanager_body(starts=bot.clock.now(), service="notify", env="prod"))
        [message] = alert_messages(bot)
        action, value = "check_rollback", buttons(message.blocks)["check_rollback"]
        await bot.click(action, value, user=OUTSIDER)
        assert "you are not in oncall, so you cannot act on this check" in bot.last_reply(OUTSIDER)
        await bot.settle()
        assert bot.store.get_release(release_id).state is ReleaseState.SUCCEEDED  # type: ignore[union-attr]
        await bot.click(action, value, user=ONCALL1)
        await bot.click(action, value, user=ONCALL2)  # a second click asks nothing more
        await bot.settle()
        assert "already requested" in bot.last_reply(ONCALL2)
        assert bot.store.get_release(release_id).state is ReleaseState.ROLLED_BACK  # type: ignore[union-attr]
        rollbacks = [r for r in bot.store.history("notify", "prod", 10) if r.kind.value == "rollback"]
        assert len(rollbacks) == 1 and rollbacks[0].requested_by == ONCALL1


async def test_on_alert_auto_rollback_rolls_back_as_the_bot_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(
        tmp_path, monkeypatch, on_alert="auto_rollback", rollback={"approvals": {"required": 0}}
    ) as bot:
        release_id = await released(bot)
        bot.clock.advance(minutes=2)
        body = alertmanager_body(starts=bot.clock.now(), service="notify", env="prod")
        await post_alerts(bot, body)
        await post_alerts(bot, body)
        await bot.settle()
        assert bot.store.get_release(release_id).state is ReleaseState.ROLLED_BACK  # type: ignore[union-attr]
        rollbacks = [r for r in bot.store.history("notify", "prod", 10) if r.kind.value == "rollback"]
        assert len(rollbacks) == 1 and rollbacks[0].requested_by == "release-bot"
        assert rollbacks[0].version == "1.2.2", "back to what ran before"
        [message] = alert_messages(bot)
        assert "auto_rollback" in blocks_text(message.blocks)
        assert "check_rollback" not in buttons(message.blocks)
        audit = [(e.actor, e.action) for e in bot.store.audit_since(None)]
        assert ("release-bot", "rollback.requested") in audit


async def test_on_alert_auto_rollback_waits_for_the_rollback_approvals_like_a_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(tmp_path, monkeypatch, on_alert="auto_rollback") as bot:  # prod: 1 on-call approval
        release_id = await released(bot)
        bot.clock.advance(minutes=2)
        await post_alerts(bot, alertmanager_body(starts=bot.clock.now(), service="notify", env="prod"))
        await bot.settle()
        [rollback] = [r for r in bot.store.history("notify", "prod", 10) if r.kind.value == "rollback"]
        assert rollback.state is ReleaseState.AWAITING_APPROVAL and rollback.rollback_of == release_id


async def test_on_alert_notify_pings_without_offering_a_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(tmp_path, monkeypatch, on_alert="notify") as bot:
        release_id = await released(bot)
        bot.clock.advance(minutes=2)
        await post_alerts(bot, alertmanager_body(starts=bot.clock.now(), service="notify", env="prod"))
        await bot.settle()
        [message] = alert_messages(bot)
        assert f"<@{ONCALL1}>" in blocks_text(message.blocks)
        assert set(buttons(message.blocks)) == {"alert_ack"}
        assert bot.store.get_release(release_id).state is ReleaseState.SUCCEEDED  # type: ignore[union-attr]


async def test_acknowledge_once_by_oncall_and_wrong_person_stale_and_replayed_clicks_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        await released(bot)
        bot.clock.advance(minutes=2)
        starts = bot.clock.now()
        await post_alerts(bot, alertmanager_body(starts=starts, service="notify", env="prod"))
        [message] = alert_messages(bot)
        incident_id = buttons(message.blocks)["alert_ack"]

        def acknowledged_by() -> Any:
            row = bot.store.sql.one("SELECT acknowledged_by FROM incidents")
            return row["acknowledged_by"] if row else None

        await bot.click("alert_ack", incident_id, user=RELEASER)  # a releaser is not on-call
        assert "so you cannot acknowledge this alert" in bot.last_reply(RELEASER) and acknowledged_by() is None
        await bot.click("alert_ack", "999", user=ONCALL1)  # not an incident of ours
        assert "not one the bot knows about" in bot.last_reply(ONCALL1) and acknowledged_by() is None
        await bot.click("alert_ack", incident_id, user=ONCALL1)
        assert "Acknowledged" in bot.last_reply(ONCALL1) and acknowledged_by() == ONCALL1
        [message] = alert_messages(bot)
        assert f"Acknowledged by <@{ONCALL1}>" in blocks_text(message.blocks)
        assert "alert_ack" not in buttons(message.blocks) and "check_rollback" in buttons(message.blocks)
        await bot.click("alert_ack", incident_id, user=ONCALL2)  # the old button, clicked again
        assert f"already acknowledged by <@{ONCALL1}>" in bot.last_reply(ONCALL2) and acknowledged_by() == ONCALL1
        edits = len(alert_messages(bot)[0].edits)
        bot.clock.advance(minutes=5)
        await post_alerts(
            bot, alertmanager_body("resolved", starts=starts, ends=bot.clock.now(), service="notify", env="prod")
        )
        assert len(alert_messages(bot)[0].edits) == edits + 1
        audit = [(e.actor, e.action) for e in bot.store.audit_since(None) if e.action == "incident.acknowledged"]
        assert audit == [(ONCALL1, "incident.acknowledged")]


async def test_acknowledge_after_the_incident_resolved_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with alerting_bot(tmp_path, monkeypatch) as bot:
        await released(bot)
        starts = bot.clock.now() + timedelta(minutes=1)
        bot.clock.advance(minutes=2)
        await post_alerts(bot, alertmanager_body(starts=starts, service="notify", env="prod"))
        incident_id = buttons(alert_messages(bot)[0].blocks)["alert_ack"]
        await post_alerts(
            bot, alertmanager_body("resolved", starts=starts, ends=bot.clock.now(), service="notify", env="prod")
        )
        await bot.click("alert_ack", incident_id, user=ONCALL1)
        assert "resolved already" in bot.last_reply(ONCALL1)
        assert bot.store.sql.one("SELECT acknowledged_by FROM incidents") == {"acknowledged_by": None}


# --- configuration


def test_check_config_names_the_missing_alerts_token_variable(tmp_path: Path) -> None:
    data = {**alerts_config(tmp_path / "log"), "alerts": {"token_env": "ALERTMANAGER_TOKEN"}}
    config = parse_config(data)
    problems = environment_problems(config, {}, tmp_path, environ={})
    assert [str(p) for p in problems] == ["alerts.token_env: environment variable ALERTMANAGER_TOKEN is not set"]
    assert environment_problems(config, {}, tmp_path, environ={"ALERTMANAGER_TOKEN": "x"}) == []


@pytest.mark.parametrize(
    ("alerts", "path", "words"),
    [
        ({"token_env": "not a name"}, "alerts.token_env", "name of an environment variable"),
        ({"token_env": "T", "service_label": "app-name"}, "alerts.service_label", "not a Prometheus label name"),
        ({"service_label": "app"}, "alerts.token_env", "required"),
    ],
)
def test_bad_alerts_config_is_an_error_at_its_path(
    tmp_path: Path, alerts: dict[str, Any], path: str, words: str
) -> None:
    from bot.config import ConfigError

    data = {**alerts_config(tmp_path / "log"), "alerts": alerts}
    with pytest.raises(ConfigError) as raised:
        parse_config(data)
    assert any(p.path == path and words.lower() in p.message.lower() for p in raised.value.problems), raised.value


def test_on_alert_and_watch_are_checked(tmp_path: Path) -> None:
    from bot.config import ConfigError

    for prod, path in (
        ({"on_alert": "page"}, "environments.prod.on_alert"),
        ({"watch": "0s"}, "environments.prod.watch"),
    ):
        with pytest.raises(ConfigError) as raised:
            parse_config(alerts_config(tmp_path / "log", **prod))
        assert [p.path for p in raised.value.problems] == [path]
    config = parse_config(alerts_config(tmp_path / "log"))
    assert config.environments["prod"].on_alert == "offer_rollback"
    assert config.environments["prod"].watch == timedelta(minutes=30)


async def test_without_alerts_config_the_route_is_not_served(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        response = await bot.client.post(
            "/api/v1/alerts", json={"version": "4"}, headers={"Authorization": "Bearer test-api-token"}
        )
        assert response.status == 404
        assert nothing_stored(bot)
