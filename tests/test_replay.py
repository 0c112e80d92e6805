"""Replayed Slack requests, and secrets compared in constant time.

Slack's model: a signature binds the body to a timestamp, and a request more than five minutes off is
refused, so a captured request cannot be replayed later. Inside the window a signature does not stop a
replay: the edge remembers every request it acted on (tests/test_replay_requests.py), so a replayed
`/release staging 1.2.3` — while the first runs or after it finished — and a replayed button click are
acked with an empty body and do nothing. These tests replay the exact captured bytes and headers.
"""

from __future__ import annotations

import ast
import asyncio
import hmac
import inspect
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

import bot.api
from tests.fakes.slack_signing import block_actions_body, sign, signed_headers, slash_command_body
from tests.harness import (
    API_TOKEN,
    CHANNEL,
    ONCALL1,
    RELEASER,
    SECRET,
    BotHarness,
    MutableClock,
    config_dict,
    running_bot,
)

TABLES = ("releases", "approvals", "approval_votes", "audit", "release_locks", "env_state", "manual_locks")
SATURDAY_11AM = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)


def world(bot: BotHarness) -> dict[str, int]:
    return {table: bot.count(table) for table in TABLES}


def captured_command(bot: BotHarness, text: str, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A `/release` request exactly as Slack sent it: the bytes and the signed headers."""
    url = bot.slack.new_response_url(channel=CHANNEL, user_id=RELEASER)
    body = slash_command_body("/release", text, user_id=RELEASER, channel_id=CHANNEL, response_url=url)
    return body, signed_headers(SECRET, body, timestamp=timestamp)


async def test_a_request_signed_more_than_five_minutes_ago_is_refused(bot: BotHarness) -> None:
    bot.add_candidate("1.2.3")
    before = world(bot)
    for skew in (-301, -3600, +301):
        body, headers = captured_command(bot, "staging 1.2.3", timestamp=int(time.time()) + skew)
        response = await bot.client.post("/slack/events", data=body, headers=headers)
        assert response.status == 401, skew
    await bot.settle()
    assert world(bot) == before and bot.deploys() == [] and bot.slack.calls_to("response_url") == []


async def test_a_captured_request_replayed_six_minutes_later_is_refused(bot: BotHarness) -> None:
    bot.add_candidate("1.2.3")
    body, headers = captured_command(bot, "staging 1.2.3")
    before = world(bot)
    # The wall clock Slack's verifier reads moves on; the event loop's monotonic clock is left alone.
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=6), tick=True):
        response = await bot.client.post("/slack/events", data=body, headers=headers)
        assert response.status == 401
    await bot.settle()
    assert world(bot) == before and bot.deploys() == []
    # The same bytes, had they arrived in time, were good: the refusal was the clock's, not the signature's.
    response = await bot.client.post("/slack/events", data=body, headers=headers)
    assert response.status == 200
    await bot.settle()
    assert bot.deploys() == ["notify 1.2.3 staging 100"]


async def test_a_click_signed_six_minutes_ago_counts_for_nothing(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(SATURDAY_11AM)) as bot:
        await _force_request(bot)
        approval = str(bot.store.sql.query("SELECT id FROM approvals")[0]["id"])
        body = block_actions_body(user_id=ONCALL1, action_id="approval_approve", value=approval, channel_id=CHANNEL)
        response = await bot.client.post(
            "/slack/events", data=body, headers=signed_headers(SECRET, body, timestamp=int(time.time()) - 360)
        )
        assert response.status == 401
        await bot.settle()
        assert bot.count("approval_votes") == 0 and bot.deploys() == []


async def _force_request(bot: BotHarness) -> None:
    bot.add_candidate("1.2.2")
    bot.add_candidate("1.2.3")
    bot.live("prod", "1.2.2")
    bot.live("staging", "1.2.3")
    await bot.command("prod 1.2.3 --force hotfix")
    await bot.settle()


async def test_a_replay_inside_the_window_does_nothing_while_the_first_runs_or_after(tmp_path: Path) -> None:
    log = tmp_path / "deploys.log"
    block = Path(f"{log}.block")
    os.mkfifo(block)
    async with running_bot(tmp_path, config=config_dict(log)) as bot:
        bot.add_candidate("1.2.3")
        body, headers = captured_command(bot, "staging 1.2.3")

        async def send() -> bytes:
            response = await bot.client.post("/slack/events", data=body, headers=headers)
            assert response.status == 200
            return await response.read()

        assert await send() == b""
        await bot.slack.wait_for("response_url")
        assert "has started" in bot.last_reply(RELEASER)
        await bot.slack.wait_for("chat.postMessage")  # the deploy is running, held inside the stub script
        assert await send() == b""  # the replay: acked, and no "is busy" answer either
        await asyncio.get_running_loop().run_in_executor(None, block.write_text, "go\n")
        await bot.settle()
        assert await send() == b""
        await bot.settle()
        assert len(bot.slack.calls_to("response_url")) == 1
        assert bot.deploys() == ["notify 1.2.3 staging 100"]
        assert bot.count("releases") == 1


async def test_a_replayed_approval_click_counts_once(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=MutableClock(SATURDAY_11AM)) as bot:
        await _force_request(bot)
        approval = str(bot.store.sql.query("SELECT id FROM approvals")[0]["id"])
        url = bot.slack.new_response_url(channel=CHANNEL, user_id=ONCALL1)
        body = block_actions_body(
            user_id=ONCALL1, action_id="approval_approve", value=approval, channel_id=CHANNEL, response_url=url
        )
        headers = signed_headers(SECRET, body)
        answered = len(bot.slack.calls_to("response_url"))
        for _ in range(3):
            response = await bot.client.post("/slack/events", data=body, headers=headers)
            assert response.status == 200
        await bot.slack.wait_for("response_url", count=answered + 1)
        await bot.settle()
        assert len(bot.slack.calls_to("response_url")) == answered + 1  # the click is answered once; replays are silent
        assert bot.count("approval_votes") == 1
        assert bot.deploys() == ["notify 1.2.3 prod 100"]


# --- secrets compared in constant time -------------------------------------------------------------------


def _recorder(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, object]]:
    calls: list[tuple[object, object]] = []
    real: Callable[..., bool] = hmac.compare_digest

    def recording(a: object, b: object) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    return calls


def test_the_api_token_check_uses_compare_digest_and_no_equality() -> None:
    tree = ast.parse(inspect.getsource(bot.api._authorized))
    calls = [ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)]
    assert "hmac.compare_digest" in calls
    compared = [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.Compare)]
    assert not [c for c in compared if "token" in c or "credentials" in c], compared


async def test_the_presented_api_token_goes_through_compare_digest(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _recorder(monkeypatch)
    for presented, status in [(API_TOKEN[:-1], 401), (API_TOKEN + "x", 401), ("", 401), (API_TOKEN, 200)]:
        calls.clear()
        response = await bot.client.get("/api/v1/releases", headers={"Authorization": f"Bearer {presented}".rstrip()})
        assert response.status == status, presented
        assert (presented.encode(), API_TOKEN.encode()) in calls, calls
    assert bot.count("audit") == 0


async def test_the_slack_signature_goes_through_compare_digest(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _recorder(monkeypatch)
    body = slash_command_body("/release", "help", user_id=RELEASER, channel_id=CHANNEL)
    now = int(time.time())
    forged = sign("not-the-secret", now, body)
    response = await bot.client.post(
        "/slack/events",
        data=body,
        headers={
            "X-Slack-Signature": forged,
            "X-Slack-Request-Timestamp": str(now),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status == 401
    assert any(forged in (a, b) or forged.encode() in (a, b) for a, b in calls), calls
