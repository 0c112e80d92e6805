"""Slack faults during a release, end to end: the real HTTP app, the engine, SQLite and the fake Web API.

Whatever Slack does (429 with Retry-After, 500s, timeouts, dropped connections, an outage, a restart of
the bot in the middle), the release runs to the end, and afterwards the release's thread holds exactly
the messages a fault-free run posts, each once, in order, with the parent showing the final state.
The outbox's backoff sleep is a test double (tests.test_outbox.Waits): nothing waits in real time.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from io import TextIOWrapper
from pathlib import Path
from typing import Any

import pytest

from bot import bootstrap
from bot.core.models import ReleaseState
from bot.slack.outbox import OutboxNotifier, OutboxPolicy
from bot.store.outbox import placeholder_id
from tests.fakes import FakeSlackWebAPI
from tests.harness import (
    CHANNEL,
    TUESDAY_10AM,
    BotHarness,
    MutableClock,
    app_on,
    config_dict,
    running_bot,
)
from tests.test_outbox import Waits

BILLING = "C02BILLING"
Story = tuple[str, list[str]]  # the parent's final text, the replies' texts


def use_policy(monkeypatch: pytest.MonkeyPatch, waits: Waits, *, timeout: float = 2.0) -> None:
    """Start the bot with a fast outbox: a short client timeout and the test's backoff sleep."""
    monkeypatch.setattr(bootstrap, "OUTBOX_POLICY", OutboxPolicy(timeout=timeout, sleep=waits, hand_back_after=5.0))


def outbox(bot: BotHarness) -> OutboxNotifier:
    found = bot.runtime.outbox
    assert isinstance(found, OutboxNotifier)
    return found


def story(slack: FakeSlackWebAPI, channel: str, thread_ts: str | None) -> Story:
    assert thread_ts is not None and placeholder_id(thread_ts) is None, f"no real thread: {thread_ts!r}"
    parent, *replies = slack.thread(channel, thread_ts)
    assert parent.ts == thread_ts
    return parent.text, [m.text for m in replies]


def release_story(bot: BotHarness, channel: str = CHANNEL, service: str = "notify") -> Story:
    [release] = bot.store.history(service, "staging")
    assert release.state is ReleaseState.SUCCEEDED
    return story(bot.slack, channel, release.thread_ts)


def assert_each_once(slack: FakeSlackWebAPI, expected: Story, channel: str = CHANNEL) -> None:
    """The channel shows exactly the expected messages: none missing, none twice."""
    parent, replies = expected
    assert Counter(m.text for m in slack.messages(channel)) == Counter([parent, *replies])


@pytest.fixture
async def clean_story(tmp_path: Path) -> Story:
    """What the thread of a staging release says when Slack never fails."""
    (tmp_path / "clean").mkdir()
    async with running_bot(tmp_path / "clean") as bot:
        bot.add_candidate("1.2.3")
        await bot.command("staging 1.2.3")
        await bot.settle()
        told = release_story(bot)
    assert told[0].endswith(": succeeded") and any("is live in staging" in r for r in told[1])
    return told


async def release_staging(bot: BotHarness) -> None:
    bot.add_candidate("1.2.3")
    await bot.command("staging 1.2.3")
    await bot.settle()


async def test_rate_limited_with_retry_after_the_thread_still_tells_the_whole_story(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_story: Story
) -> None:
    waits = Waits()
    use_policy(monkeypatch, waits)
    async with running_bot(tmp_path) as bot:
        bot.slack.fail_next("chat.postMessage", times=3, status=429, retry_after=7)
        bot.slack.fail_next("chat.update", times=2, status=429, retry_after=4)
        await release_staging(bot)
        await outbox(bot).drained()
        assert release_story(bot) == clean_story
        assert_each_once(bot.slack, clean_story)
        assert [c.fault for c in bot.slack.faulted_calls] == ["429"] * 5
    assert waits.seen.count(7.0) == 3 and waits.seen.count(4.0) == 2, "each wait honoured Retry-After"


async def test_server_errors_the_parent_goes_up_late_and_the_release_keeps_its_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_story: Story
) -> None:
    use_policy(monkeypatch, Waits())
    async with running_bot(tmp_path) as bot:
        bot.slack.fail_next("chat.postMessage", times=2, status=500)
        bot.slack.fail_next("chat.update", times=2, status=503)
        await release_staging(bot)
        await outbox(bot).drained()
        # The parent failed first, so the release stored a placeholder; it was swapped for the real ts.
        assert release_story(bot) == clean_story
        assert_each_once(bot.slack, clean_story)
        assert bot.slack.calls_to("conversations.history"), "a 5xx post is looked for before it is re-sent"


async def test_a_timed_out_post_that_slack_did_post_is_not_posted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_story: Story
) -> None:
    class SlackFinishesMeanwhile(Waits):
        async def __call__(self, seconds: float) -> None:
            await super().__call__(seconds)
            # Meanwhile Slack finishes the request the client gave up on (one per wait), and posts it.
            await bot.slack.wait_for("chat.postMessage", count=len(self.seen), predicate=lambda c: c.delay > 0)

    use_policy(monkeypatch, SlackFinishesMeanwhile(), timeout=0.25)
    async with running_bot(tmp_path) as bot:
        bot.slack.delay_next("chat.postMessage", 0.7, times=2)
        await release_staging(bot)
        await outbox(bot).drained()
        assert release_story(bot) == clean_story
        assert_each_once(bot.slack, clean_story)
        held = [c for c in bot.slack.calls_to("chat.postMessage") if c.delay > 0]
        assert len(held) == 2, "both held posts landed late"
        assert len(bot.slack.calls_to("conversations.replies")) + len(bot.slack.calls_to("conversations.history")) == 2
        assert len(bot.slack.calls_to("chat.postMessage")) == 1 + len(clean_story[1])


async def test_dropped_connections_lose_nothing_and_duplicate_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_story: Story
) -> None:
    use_policy(monkeypatch, Waits())
    async with running_bot(tmp_path) as bot:
        bot.slack.fail_next("chat.postMessage", times=2, drop_connection=True)
        bot.slack.fail_next("chat.update", times=1, drop_connection=True)
        await release_staging(bot)
        await outbox(bot).drained()
        assert release_story(bot) == clean_story
        assert_each_once(bot.slack, clean_story)


async def blocked_release(bot: BotHarness) -> TextIOWrapper:
    """Start a staging release whose deploy script waits on the FIFO; return its writer once it waits."""
    bot.add_candidate("1.2.3")
    fifo = Path(f"{bot.log}.block")
    os.mkfifo(fifo)
    before = len(bot.slack.calls_to("response_url"))
    assert (await bot.command("staging 1.2.3")).status == 200
    await bot.slack.wait_for("response_url", count=before + 1)  # not settle(): the deploy is meant to wait
    await bot.slack.wait_for("chat.update", predicate=lambda c: str(c.args.get("text", "")).endswith(": deploying"))
    return await asyncio.get_running_loop().run_in_executor(None, fifo.open, "w")


async def finish_while_down(bot: BotHarness, writer: TextIOWrapper) -> list[str]:
    """Slack goes down, the deploy finishes; returns what the channel showed when it went down."""
    before = [m.text for m in bot.slack.messages(CHANNEL)]
    bot.slack.set_down(True)
    writer.write("go\n")
    writer.close()
    await bot.settle()
    [release] = bot.store.history("notify", "staging")
    assert release.state is ReleaseState.SUCCEEDED, "the release finished while Slack was down"
    assert [m.text for m in bot.slack.messages(CHANNEL)] == before, "nothing got through yet"
    assert bot.slack.faulted_calls, "the outbox did try"
    return before


async def test_slack_down_for_a_minute_the_release_finishes_and_the_thread_catches_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_story: Story
) -> None:
    use_policy(monkeypatch, Waits(held=True))
    async with running_bot(tmp_path) as bot:
        writer = await blocked_release(bot)
        before = await finish_while_down(bot, writer)
        assert before[0].endswith(": deploying")
        bot.slack.set_down(False)
        outbox(bot).wake()  # the next backoff would end within 30 s; the test does not wait for it
        await outbox(bot).drained()
        assert release_story(bot) == clean_story
        assert_each_once(bot.slack, clean_story)


async def test_stopped_while_slack_is_down_the_next_start_delivers_everything_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_story: Story
) -> None:
    clock = MutableClock(TUESDAY_10AM)
    use_policy(monkeypatch, Waits(held=True))
    async with FakeSlackWebAPI() as slack:
        async with app_on(tmp_path, slack, clock) as bot:
            writer = await blocked_release(bot)
            await finish_while_down(bot, writer)
        slack.set_down(False)
        use_policy(monkeypatch, Waits())
        async with app_on(tmp_path, slack, clock) as bot:
            # The app starts serving once each lane had its first go: the thread is whole already.
            assert release_story(bot) == clean_story
            assert_each_once(slack, clean_story)
            assert bot.store.outbox_counts().get("pending", 0) == 0


def two_services(log: Path) -> dict[str, Any]:
    config = config_dict(log)
    config["services"]["billing"] = {"channel": BILLING, "components": ["api"], "pipeline": ["staging", "prod"]}
    return config


async def test_a_channel_slack_keeps_failing_does_not_hold_up_another_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_story: Story
) -> None:
    use_policy(monkeypatch, Waits(held=True))
    async with running_bot(tmp_path, config=two_services(tmp_path / "deploys.log")) as bot:
        bot.slack.fail_next("chat.postMessage", status=503)  # the notify parent: its lane now backs off
        await release_staging(bot)
        assert bot.slack.messages(CHANNEL) == []
        bot.store.put_candidate(
            service="billing",
            version="2.0.0",
            commit="2" * 40,
            committed_at=None,
            components={"api": "ghcr.io/example/billing:2.0.0"},
            tests={"unit": "passed"},
            now=bot.clock.now(),
        )
        await bot.command("staging 2.0.0", channel=BILLING)
        await bot.settle()
        billing_parent, billing_replies = release_story(bot, BILLING, "billing")
        assert billing_parent.endswith(": succeeded") and billing_replies, "billing's thread is whole already"
        assert bot.slack.messages(CHANNEL) == [], "notify's messages still wait, in order"
        outbox(bot).wake()
        await outbox(bot).drained()
        assert release_story(bot) == clean_story
        assert_each_once(bot.slack, clean_story)
