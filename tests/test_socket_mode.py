"""Socket Mode end to end: Slack's WebSocket envelopes in, the same handlers, acks by envelope id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.bootstrap import socket_app
from bot.config import parse_config
from bot.server import RUNTIME
from bot.settings import Settings, SettingsError
from bot.store import Store
from tests.fakes import FakeSlackWebAPI, FakeSocketModeServer
from tests.fakes.slack_signing import block_actions_payload, slash_command_payload
from tests.harness import CHANNEL, RELEASER, TUESDAY_10AM, MutableClock, config_dict


def add_candidate(store: Store) -> None:
    """What CI registers before the release the tests ask for."""
    store.put_candidate(
        service="notify",
        version="2.0.0",
        commit="ab" * 20,
        committed_at=None,
        components={"api": "ghcr.io/x/api:2.0.0", "worker": "ghcr.io/x/worker:2.0.0"},
        tests={},
        now=TUESDAY_10AM,
    )


@pytest.fixture
async def socket_bot(
    tmp_path: Path,
) -> AsyncIterator[tuple[FakeSlackWebAPI, FakeSocketModeServer, TestClient[Any, Any]]]:
    async with FakeSlackWebAPI() as slack, FakeSocketModeServer(app_id=slack.app_id) as server:
        slack.attach_socket_mode(server)
        settings = Settings(slack_api_url=slack.base_url, db_path=tmp_path / "bot.db").model_copy(
            update={"slack_bot_token": SecretStr("xoxb-test"), "slack_app_token": SecretStr("xapp-test")}
        )
        config = parse_config(config_dict(tmp_path / "deploys.log"))
        app = socket_app(settings, config, tmp_path, clock=MutableClock(TUESDAY_10AM))
        async with TestClient(TestServer(app)) as client:
            await server.wait_connected(5.0)
            yield slack, server, client
            await client.server.app[RUNTIME].engine.drain()


async def test_slash_command_over_a_websocket_is_acked_and_runs_the_release(
    socket_bot: tuple[FakeSlackWebAPI, FakeSocketModeServer, TestClient[Any, Any]], tmp_path: Path
) -> None:
    slack, server, client = socket_bot
    runtime = client.server.app[RUNTIME]
    add_candidate(runtime.store.sync)
    url = slack.new_response_url(channel=CHANNEL, user_id=RELEASER)
    payload = slash_command_payload("/release", "staging 2.0.0", user_id=RELEASER, channel_id=CHANNEL, response_url=url)
    ack = await server.send_envelope("slash_commands", payload)
    assert "envelope_id" in ack
    await slack.wait_for("response_url")
    await runtime.engine.drain()
    assert (tmp_path / "deploys.log").read_text().splitlines() == ["notify 2.0.0 staging 100"]
    assert any("is live in staging" in m.text for m in slack.messages(CHANNEL))


async def test_health_and_metrics_stay_on_http_in_socket_mode(
    socket_bot: tuple[FakeSlackWebAPI, FakeSocketModeServer, TestClient[Any, Any]],
) -> None:
    _, _, client = socket_bot
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/metrics")).status == 200
    assert (await client.post("/slack/events", data=b"x")).status == 404  # events arrive over the socket instead


async def test_a_tampered_button_over_the_socket_is_refused(
    socket_bot: tuple[FakeSlackWebAPI, FakeSocketModeServer, TestClient[Any, Any]],
) -> None:
    slack, server, client = socket_bot
    url = slack.new_response_url(channel=CHANNEL, user_id=RELEASER)
    payload = block_actions_payload(
        user_id=RELEASER, action_id="approval_approve", value="not-a-number", channel_id=CHANNEL, response_url=url
    )
    await server.send_envelope("interactive", payload)
    [answer] = await slack.wait_for("response_url")
    assert "not one of ours" in str(answer.args)
    assert client.server.app[RUNTIME].store.sync.sql.one("SELECT count(*) AS n FROM audit")["n"] == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "needs SLACK_APP_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-wrong"}, "app-level token"),
        ({"SLACK_APP_TOKEN": "xapp-1"}, "needs SLACK_BOT_TOKEN"),
    ],
)
def test_missing_socket_credentials_fail_with_one_clear_line(env: dict[str, str], message: str) -> None:
    settings = Settings.from_env(env)
    with pytest.raises(SettingsError) as caught:
        settings.require_socket()
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert "xoxb-1" not in str(caught.value) and "xapp-1" not in str(caught.value)


async def test_a_redelivered_socket_mode_envelope_acts_once(
    socket_bot: tuple[FakeSlackWebAPI, FakeSocketModeServer, TestClient[Any, Any]], tmp_path: Path
) -> None:
    slack, server, client = socket_bot
    runtime = client.server.app[RUNTIME]
    store = runtime.store.sync
    add_candidate(store)
    url = slack.new_response_url(channel=CHANNEL, user_id=RELEASER)
    payload = slash_command_payload("/release", "staging 2.0.0", user_id=RELEASER, channel_id=CHANNEL, response_url=url)
    first = await server.send_envelope("slash_commands", payload, envelope_id="e-1")
    await slack.wait_for("response_url")
    await runtime.engine.drain()
    # Slack saw no ack in time and delivers the same envelope again: it is acked, and nothing runs.
    again = await server.send_envelope("slash_commands", payload, envelope_id="e-1")
    assert first["envelope_id"] == again["envelope_id"] == "e-1" and "payload" not in again
    await runtime.engine.drain()
    assert (tmp_path / "deploys.log").read_text().splitlines() == ["notify 2.0.0 staging 100"]
    assert len(slack.calls_to("response_url")) == 1
    assert store.sql.one("SELECT count(*) AS n FROM releases") == {"n": 1}
