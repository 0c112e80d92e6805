"""End to end through the real HTTP server: signed slash commands in, Slack Web API calls out."""

from __future__ import annotations

import asyncio
import html
import json
import os
import time
from pathlib import Path

import pytest
from slack_sdk.models.blocks import Block

from bot.core.models import ReleaseState
from tests.harness import CHANNEL, OUTSIDER, RELEASER, SECRET, BotHarness, config_dict, running_bot


def assert_blocks_parse(blocks: list[dict[str, object]]) -> None:
    assert 0 < len(blocks) <= 50
    for block in Block.parse_all(blocks):
        assert block is not None
        block.validate_json()


async def test_release_to_staging_end_to_end(bot: BotHarness) -> None:
    bot.add_candidate("1.2.3")
    started = time.perf_counter()
    response = await bot.command("staging 1.2.3")
    elapsed = time.perf_counter() - started
    assert response.status == 200
    assert elapsed < 3.0, "Slack needs the ack within 3 s"
    await bot.settle()

    posts = bot.slack.calls_to("chat.postMessage")
    parents = [c for c in posts if not c.args.get("thread_ts")]
    assert len(parents) == 1 and parents[0].args["channel"] == CHANNEL
    assert_blocks_parse(parents[0].args["blocks"])
    updates = bot.slack.calls_to("chat.update")
    assert updates, "the parent message is updated with the outcome"
    for call in updates:
        assert_blocks_parse(call.args["blocks"])
    final = bot.slack.message(CHANNEL, parents[0].response["ts"])
    assert "succeeded" in final.text
    thread = bot.slack.thread(CHANNEL, parents[0].response["ts"])
    assert any("is live in staging" in m.text for m in thread[1:])

    assert bot.deploys() == ["notify 1.2.3 staging 100"], "the deploy script ran once with the right argv"
    status = await bot.command("status")
    answer = await status.json()  # a fast read: answered inside the ack itself
    assert answer["response_type"] == "ephemeral"
    assert "*1.2.3*" in json.dumps(answer["blocks"]) and "staging" in json.dumps(answer["blocks"])
    assert bot.store.lock_of("notify", "staging") is None


async def test_promote_to_prod_ships_what_staging_runs(bot: BotHarness) -> None:
    bot.add_candidate("1.2.3")
    bot.live("prod", "1.2.2")
    await bot.command("staging 1.2.3")
    await bot.settle()
    await bot.command("prod")
    await bot.settle()
    assert bot.deploys() == ["notify 1.2.3 staging 100", "notify 1.2.3 prod 100"]
    state = bot.store.env_state("notify", "prod")
    assert state is not None and state.version == "1.2.3"


@pytest.mark.parametrize(
    ("headers_of", "why"),
    [
        (
            lambda body: {"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": str(int(time.time()))},
            "forged signature",
        ),
        (lambda body: {}, "no signature"),
    ],
)
async def test_unsigned_or_forged_requests_are_refused(bot: BotHarness, headers_of: object, why: str) -> None:
    from tests.fakes.slack_signing import slash_command_body

    bot.add_candidate("1.2.3")
    body = slash_command_body("/release", "staging 1.2.3", user_id=RELEASER, channel_id=CHANNEL)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **headers_of(body)}  # type: ignore[operator]
    response = await bot.client.post("/slack/events", data=body, headers=headers)
    assert response.status == 401, why
    await bot.settle()
    assert bot.count("releases") == 0 and bot.deploys() == []


async def test_stale_timestamp_is_refused_even_with_a_valid_signature(bot: BotHarness) -> None:
    bot.add_candidate("1.2.3")
    response = await bot.command("staging 1.2.3", timestamp=int(time.time()) - 301)
    assert response.status == 401
    response = await bot.command("staging 1.2.3", secret="not-the-secret")
    assert response.status == 401
    await bot.settle()
    assert bot.count("releases") == 0 and bot.deploys() == []


async def test_twenty_identical_requests_deploy_once(tmp_path: Path) -> None:
    log = tmp_path / "deploys.log"
    block = Path(f"{log}.block")
    os.mkfifo(block)
    async with running_bot(tmp_path, config=config_dict(log)) as bot:
        bot.add_candidate("1.2.3")
        responses = await asyncio.gather(*(bot.command("staging 1.2.3") for _ in range(20)))
        assert all(r.status == 200 for r in responses)
        # Every request has been answered while the one deploy is still blocked inside the script.
        await bot.slack.wait_for("chat.postMessage", count=1)
        for _ in range(200):
            if len(bot.replies_to(RELEASER)) >= 20:
                break
            await asyncio.sleep(0.01)  # polling the fake's record of replies, not waiting for the work itself
        busy = [t for t in bot.replies_to(RELEASER) if "is busy" in t]
        assert len(busy) == 19
        assert all("<@U01RELEASE> holds it" in t for t in busy)
        await asyncio.get_running_loop().run_in_executor(None, block.write_text, "go\n")
        await bot.settle()
        assert bot.deploys() == ["notify 1.2.3 staging 100"]
        assert bot.count("releases") == 1


@pytest.mark.parametrize(
    ("text", "user", "expected"),
    [
        ("staging", RELEASER, "first stage: name a version"),
        ("qa 1.2.3", RELEASER, "unknown command `qa`"),
        ("deploy to staging", RELEASER, "say which version to deploy"),
        ("staging 1.2.3 extra", RELEASER, "unexpected `extra`"),
        ("staging 9.9.9", RELEASER, "is not a known notify candidate"),
        ("staging 1.2.3;rm", RELEASER, "is not a version"),
        ("prod 1.2.3", RELEASER, "has not been released to staging yet"),
        ("promote staging to prod", RELEASER, "nothing runs in staging"),
        ("prod 1.2.3", OUTSIDER, "has not been released to staging yet"),
        ("lock prod", RELEASER, "needs a reason"),
        ("bogus", RELEASER, "unknown command"),
    ],
)
async def test_bad_commands_are_refused_and_change_nothing(
    bot: BotHarness, text: str, user: str, expected: str
) -> None:
    bot.add_candidate("1.2.3")
    before = {t: bot.count(t) for t in ("releases", "release_locks", "manual_locks", "audit", "env_state")}
    response = await bot.command(text, user=user)
    assert response.status == 200
    await bot.settle()
    body = await response.text()
    answer = body if expected in body else bot.last_reply(user)
    assert expected in answer
    assert {t: bot.count(t) for t in before} == before
    assert bot.deploys() == []


async def test_user_outside_allowed_is_told_which_group(bot: BotHarness) -> None:
    bot.add_candidate("1.2.3")
    bot.live("staging", "1.2.3")
    await bot.command("prod", user=OUTSIDER)
    await bot.settle()
    assert "needs membership of releasers" in bot.last_reply(OUTSIDER)
    assert bot.count("releases") == 1 and bot.deploys() == []


async def test_member_of_a_user_group_may_release(bot: BotHarness) -> None:
    bot.add_candidate("1.2.3")
    bot.live("staging", "1.2.3")
    bot.live("prod", "1.2.2")
    await bot.command("prod", user="U01PLATFORM")  # in S01PLATFORM, resolved through usergroups.users.list
    await bot.settle()
    assert bot.deploys() == ["notify 1.2.3 prod 100"]
    assert bot.slack.calls_to("usergroups.users.list")


async def test_failing_deploy_is_marked_failed_with_output_and_frees_the_lock(bot: BotHarness) -> None:
    bot.add_candidate("1.2.3")
    Path(f"{bot.log}.fail").write_text("error: cluster unreachable\n")
    await bot.command("staging 1.2.3")
    await bot.settle()
    [release] = bot.store.history("notify", "staging")
    assert release.state is ReleaseState.FAILED
    assert "exit status 3" in (release.error or "")
    assert "cluster unreachable" in (release.output_tail or "")
    assert bot.store.lock_of("notify", "staging") is None
    thread_texts = [m.text for m in bot.slack.messages(CHANNEL)]
    assert any("failed" in t for t in thread_texts)


async def test_hanging_deploy_times_out_and_frees_the_lock(tmp_path: Path) -> None:
    log = tmp_path / "deploys.log"
    config = config_dict(log)
    config["environments"]["staging"]["deploy"]["timeout"] = "1s"
    Path(f"{log}.hang").write_text("")
    async with running_bot(tmp_path, config=config) as bot:
        bot.add_candidate("1.2.3")
        await bot.command("staging 1.2.3")
        await bot.settle()
        [release] = bot.store.history("notify", "staging")
        assert release.state is ReleaseState.FAILED
        assert "timed out" in (release.error or "")
        assert bot.store.lock_of("notify", "staging") is None


async def test_help_lists_every_command(bot: BotHarness) -> None:
    response = await bot.command("help")
    raw = await response.text()
    assert "<env>" not in raw, "placeholders are escaped, or Slack would read them as links"
    body = html.unescape(raw)
    for usage in ("status", "rollback <env>", "window [env]", "freeze <env> until", "--force"):
        assert usage in body


async def test_healthz_and_metrics(bot: BotHarness) -> None:
    health = await bot.client.get("/healthz")
    assert health.status == 200 and (await health.json())["status"] == "ok"
    await bot.command("help")
    metrics = await bot.client.get("/metrics")
    text = await metrics.text()
    assert metrics.status == 200
    assert 'releasebot_slack_requests_total{kind="command"}' in text
    assert SECRET not in text
