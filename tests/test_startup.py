"""Start-up a person can read: where the bot listens and which Slack it talks to, a bad token or an unreachable
Slack named at start (never a failing request later), and nothing else on a normal start."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from bot.bootstrap import http_app
from bot.config import parse_config
from tests.fakes import FakeSlackWebAPI, FakeSocketModeServer
from tests.fakes.slack_signing import signed_headers, slash_command_body
from tests.harness import CHANNEL, RELEASER, SECRET, TUESDAY_10AM, MutableClock, config_dict, harness_settings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Started:
    process: asyncio.subprocess.Process
    lines: list[str]  # stderr up to and including the line saying where it listens (or all, when it exited)
    port: int


@asynccontextmanager
async def release_bot(tmp_path: Path, mode: str, **env: str) -> AsyncIterator[Started]:
    """``release-bot MODE`` in its own process, read until it says where it listens or exits; stopped with
    SIGTERM as a container runtime stops it."""
    config = tmp_path / "releasebot.yml"
    config.write_text(yaml.safe_dump(config_dict(tmp_path / "deploys.log")))
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RELEASEBOT_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        mode,
        "--config",
        str(config),
        "--db",
        str(tmp_path / "bot.db"),
        env={**clean, "PYTHONPATH": str(ROOT), "PORT": str(port), "SLACK_SIGNING_SECRET": SECRET, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    lines: list[str] = []
    async with asyncio.timeout(60):
        while line := (await process.stderr.readline()).decode():
            lines.append(line.rstrip("\n"))
            if " listening on " in line:
                break
    try:
        yield Started(process, lines, port)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await process.wait()


def messages(lines: list[str]) -> list[str]:
    """Log lines without their timestamp: ``LEVEL logger: message``."""
    return [line.split(" ", 2)[2] if line[:4].isdigit() else line for line in lines]


@pytest.mark.slow
async def test_serve_says_where_it_listens_and_answers_a_signed_command(tmp_path: Path) -> None:
    async with FakeSlackWebAPI() as slack:
        env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": slack.base_url}
        async with release_bot(tmp_path, "serve", **env) as bot:
            shown = messages(bot.lines)
            assert shown[-1] == (
                f"INFO release_bot: listening on http://0.0.0.0:{bot.port} (HTTP mode), Slack API at {slack.base_url}"
            )
            assert "INFO release_bot: Slack: signed in as @release-bot (U0BOT00001) in Acme (T0TEAM0001)" in shown
            assert [line for line in shown if not line.startswith("INFO ")] == [], "nothing but news on a start"

            body = slash_command_body("/release", "status", user_id=RELEASER, channel_id=CHANNEL)
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{bot.port}/slack/events"
                async with http.post(url, data=body, headers=signed_headers(SECRET, body)) as response:
                    assert response.status == 200
                    assert "notify status" in await response.text()
            assert len(slack.calls_to("auth.test")) == 1, "asked once, at start-up; not again for the request"
        assert bot.process.returncode == 0, "SIGTERM stops it cleanly"
        assert bot.process.stderr is not None
        assert "Traceback" not in (await bot.process.stderr.read()).decode()


@pytest.mark.slow
async def test_socket_mode_says_where_it_listens_too(tmp_path: Path) -> None:
    async with FakeSlackWebAPI() as slack, FakeSocketModeServer(app_id=slack.app_id) as server:
        slack.attach_socket_mode(server)
        env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_APP_TOKEN": "xapp-test", "SLACK_API_URL": slack.base_url}
        async with release_bot(tmp_path, "socket", **env) as bot:
            shown = messages(bot.lines)
            assert shown[-1] == (
                f"INFO release_bot: listening on http://0.0.0.0:{bot.port} (Socket Mode), Slack API at {slack.base_url}"
            )
            assert [line for line in shown if not line.startswith("INFO ")] == []
            assert server.connection_count == 1


@pytest.mark.slow
async def test_a_token_slack_refuses_stops_the_start_naming_the_cause(tmp_path: Path) -> None:
    async with FakeSlackWebAPI(bot_token="xoxb-the-right-one") as slack:
        env = {"SLACK_BOT_TOKEN": "xoxb-a-wrong-one", "SLACK_API_URL": slack.base_url}
        async with release_bot(tmp_path, "serve", **env) as bot:
            await bot.process.wait()
    assert bot.process.returncode == 2
    assert bot.lines[-1] == (
        f"release-bot: refusing to start: Slack refused SLACK_BOT_TOKEN: auth.test at {slack.base_url} answered "
        "invalid_auth (it is not a valid token; use the app's Bot User OAuth Token (xoxb-…) from its OAuth page)"
    )
    assert not any("listening" in line or "Traceback" in line for line in bot.lines)


@pytest.mark.slow
async def test_an_unreachable_slack_stops_the_start_naming_the_address(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/api/"
    async with release_bot(tmp_path, "serve", SLACK_BOT_TOKEN="xoxb-test", SLACK_API_URL=nowhere) as bot:
        await bot.process.wait()
    assert bot.process.returncode == 2
    assert bot.lines[-1].startswith(f"release-bot: refusing to start: cannot reach the Slack API at {nowhere} ")
    assert bot.lines[-1].endswith("check SLACK_API_URL and this machine's network")


async def test_after_a_healthy_start_a_command_needs_nothing_more_from_slack(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bolt given a token asks auth.test on the first request, and fails that request when Slack does not
    answer then; the bot asks once, at start-up, and Bolt uses that answer."""
    caplog.set_level(logging.WARNING)
    async with FakeSlackWebAPI() as slack:
        app = http_app(
            harness_settings(slack, tmp_path / "bot.db"),
            parse_config(config_dict(tmp_path / "d.log")),
            tmp_path,
            clock=MutableClock(TUESDAY_10AM),
        )
        async with TestClient(TestServer(app)) as client:
            assert caplog.records == [], "no warnings on a normal start"
            slack.fail_next("auth.test", times=5, drop_connection=True)  # Slack unreachable from now on
            body = slash_command_body("/release", "status", user_id=RELEASER, channel_id=CHANNEL)
            response = await client.post("/slack/events", data=body, headers=signed_headers(SECRET, body))
            assert response.status == 200
            assert "notify status" in await response.text()
        assert len(slack.calls_to("auth.test")) == 1
