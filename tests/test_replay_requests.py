"""Replays have one effect: a Slack request delivered again is acked (200, empty body) and does nothing.

A signature is valid for five minutes either side of its timestamp, so inside that window captured bytes
are a valid request again; Slack itself redelivers events (``X-Slack-Retry-Num``) and Socket Mode
envelopes. The edge claims each request's keys (signature, trigger_id, event_id, envelope_id) in SQLite
before dispatching. These tests replay the exact bytes and headers through the real HTTP server.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from aiohttp import ClientResponse

from bot.store import Store
from bot.store.replays import KEEP_SECONDS
from tests.fakes.slack_signing import (
    block_actions_body,
    event_body,
    signed_headers,
    slash_command_body,
    view_submission_body,
)
from tests.harness import (
    CHANNEL,
    ONCALL1,
    RELEASER,
    SECRET,
    TUESDAY_10AM,
    BotHarness,
    MutableClock,
    running_bot,
)

Captured = tuple[bytes, dict[str, str]]


def captured_command(bot: BotHarness, text: str, *, user: str = RELEASER) -> Captured:
    """A `/release` request exactly as Slack sent it: the bytes and the signed headers."""
    url = bot.slack.new_response_url(channel=CHANNEL, user_id=user)
    body = slash_command_body("/release", text, user_id=user, channel_id=CHANNEL, response_url=url)
    return body, signed_headers(SECRET, body)


async def post(bot: BotHarness, request: Captured, **extra: str) -> ClientResponse:
    body, headers = request
    return await bot.client.post("/slack/events", data=body, headers={**headers, **extra})


async def quiet(bot: BotHarness) -> None:
    """Every piece of work the acks started has finished and every Slack write has been delivered."""
    await bot.settle()
    await bot.runtime.outbox.drained()
    await bot.settle()


def effects(bot: BotHarness) -> dict[str, int]:
    """What a request can change: rows it writes, and what Slack was told."""
    return {
        "releases": bot.count("releases"),
        "audit": bot.count("audit"),
        "approval_votes": bot.count("approval_votes"),
        "outbox": bot.count("outbox"),
        "slack calls": len(bot.slack.calls),
        "deploys": len(bot.deploys()),
    }


async def assert_replay_ignored(bot: BotHarness, response: ClientResponse, before: dict[str, int]) -> None:
    assert response.status == 200
    assert await response.read() == b""  # an empty ack: Slack shows the user nothing and sees no error
    await quiet(bot)
    assert effects(bot) == before


def staging_history(bot: BotHarness) -> None:
    """staging ran 1.2.2, then 1.2.3 (the current release)."""
    bot.add_candidate("1.2.2")
    bot.add_candidate("1.2.3")
    bot.live("staging", "1.2.2")
    bot.live("staging", "1.2.3")


# --- slash commands -------------------------------------------------------------------------------------


async def test_a_replayed_rollback_rolls_back_once(bot: BotHarness, caplog: pytest.LogCaptureFixture) -> None:
    staging_history(bot)
    request = captured_command(bot, "rollback staging")
    response = await post(bot, request)
    assert response.status == 200
    await bot.slack.wait_for("response_url")
    await quiet(bot)
    assert bot.deploys() == ["notify 1.2.2 staging 100"]
    assert bot.count("releases") == 3
    before = effects(bot)

    await assert_replay_ignored(bot, await post(bot, request), before)
    assert bot.deploys() == ["notify 1.2.2 staging 100"]
    state = bot.store.env_state("notify", "staging")
    assert state is not None and state.version == "1.2.2"
    assert any("replayed Slack request" in r.getMessage() for r in caplog.records)


async def test_two_identical_rollbacks_at_once_roll_back_once(bot: BotHarness) -> None:
    staging_history(bot)
    request = captured_command(bot, "rollback staging")
    first, second = await asyncio.gather(post(bot, request), post(bot, request))
    assert first.status == second.status == 200
    await bot.slack.wait_for("response_url")
    await quiet(bot)
    assert bot.deploys() == ["notify 1.2.2 staging 100"]
    assert bot.count("releases") == 3
    assert len(bot.slack.calls_to("response_url")) == 1  # one answer: the other request was the replay


async def test_a_replayed_deploy_deploys_once_and_answers_once(bot: BotHarness) -> None:
    bot.add_candidate("1.2.3")
    request = captured_command(bot, "staging 1.2.3")
    assert (await post(bot, request)).status == 200
    await bot.slack.wait_for("response_url")
    await quiet(bot)
    assert "has started" in bot.last_reply(RELEASER)
    before = effects(bot)
    for _ in range(3):
        await assert_replay_ignored(bot, await post(bot, request), before)
    assert bot.deploys() == ["notify 1.2.3 staging 100"] and bot.count("releases") == 1


async def test_the_same_bytes_re_signed_with_a_fresh_timestamp_are_still_a_replay(bot: BotHarness) -> None:
    """A new signature does not make a new request: Slack mints one trigger_id per command typed."""
    bot.add_candidate("1.2.3")
    body, headers = captured_command(bot, "staging 1.2.3")
    assert (await post(bot, (body, headers))).status == 200
    await bot.slack.wait_for("response_url")
    await quiet(bot)
    before = effects(bot)
    resigned = signed_headers(SECRET, body, timestamp=int(headers["X-Slack-Request-Timestamp"]) - 60)
    assert resigned["X-Slack-Signature"] != headers["X-Slack-Signature"]
    await assert_replay_ignored(bot, await post(bot, (body, resigned)), before)


async def test_the_same_command_typed_again_is_a_new_request_the_engine_answers(bot: BotHarness) -> None:
    bot.add_candidate("1.2.3")
    await bot.command("staging 1.2.3")
    await quiet(bot)
    answered = len(bot.slack.calls_to("response_url"))
    await bot.command("staging 1.2.3")  # the same text: a fresh trigger_id, timestamp and signature
    await quiet(bot)
    assert len(bot.slack.calls_to("response_url")) == answered + 1
    assert "already runs 1.2.3" in bot.last_reply(RELEASER)
    assert bot.deploys() == ["notify 1.2.3 staging 100"] and bot.count("releases") == 1


async def test_status_is_still_answered_in_the_ack_and_its_replay_is_empty(bot: BotHarness) -> None:
    request = captured_command(bot, "status")
    response = await post(bot, request)
    assert response.status == 200 and b"notify" in await response.read()
    replay = await post(bot, request)
    assert replay.status == 200 and await replay.read() == b""


# --- buttons and modals ---------------------------------------------------------------------------------


async def _force_request(bot: BotHarness) -> str:
    """A break-glass prod release waiting for on-call; its approval id."""
    bot.add_candidate("1.2.2")
    bot.add_candidate("1.2.3")
    bot.live("prod", "1.2.2")
    bot.live("staging", "1.2.3")
    await bot.command("prod 1.2.3 --force hotfix")
    await quiet(bot)
    return str(bot.store.sql.query("SELECT id FROM approvals")[0]["id"])


async def test_a_replayed_approval_click_counts_once_and_answers_once(tmp_path: Path) -> None:
    saturday = MutableClock(TUESDAY_10AM.replace(day=28, hour=16))
    async with running_bot(tmp_path, clock=saturday) as bot:
        approval = await _force_request(bot)
        url = bot.slack.new_response_url(channel=CHANNEL, user_id=ONCALL1)
        body = block_actions_body(
            user_id=ONCALL1, action_id="approval_approve", value=approval, channel_id=CHANNEL, response_url=url
        )
        request = (body, signed_headers(SECRET, body))
        assert (await post(bot, request)).status == 200
        await bot.slack.wait_for("response_url")
        await quiet(bot)
        assert bot.count("approval_votes") == 1 and bot.deploys() == ["notify 1.2.3 prod 100"]
        before = effects(bot)
        await assert_replay_ignored(bot, await post(bot, request), before)
        resigned = (body, signed_headers(SECRET, body, timestamp=int(time.time()) + 30))
        await assert_replay_ignored(bot, await post(bot, resigned), before)


async def test_a_replayed_deny_submission_denies_once(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        bot.live("prod", "1.2.2")
        bot.live("prod", "1.2.3")
        await bot.command("rollback prod")
        await quiet(bot)
        assert "waiting for on-call approval" in bot.last_reply(RELEASER)
        approval = str(bot.store.sql.query("SELECT id FROM approvals")[0]["id"])
        body = view_submission_body(
            "approval_deny_reason",
            {"reason": {"reason": {"type": "plain_text_input", "value": "the alert was noise"}}},
            user_id=ONCALL1,
            private_metadata=approval,
        )
        request = (body, signed_headers(SECRET, body))
        assert (await post(bot, request)).status == 200
        await quiet(bot)
        assert "Denied" in bot.last_reply(ONCALL1)
        before = effects(bot)
        await assert_replay_ignored(bot, await post(bot, request), before)
        assert [e.action for e in bot.store.audit_since(None)].count("approval.denied") == 1


# --- Events API retries ---------------------------------------------------------------------------------


def home_opened(user: str) -> bytes:
    event = {"type": "app_home_opened", "user": user, "channel": "D" + user[1:], "tab": "home"}
    return event_body({**event, "event_ts": f"{time.time():.6f}"})


def home_rows(bot: BotHarness) -> int:
    row = bot.store.sql.one("SELECT count(*) AS n FROM outbox WHERE kind = 'publish_home'")
    return int(row["n"]) if row else 0


async def test_slacks_retry_of_an_event_acts_once(bot: BotHarness) -> None:
    body = home_opened(RELEASER)
    assert (await post(bot, (body, signed_headers(SECRET, body)))).status == 200
    await bot.slack.wait_for("views.publish")
    await quiet(bot)
    assert home_rows(bot) == 1
    before = effects(bot)
    # Slack's retry: the same envelope (same event_id), signed again at delivery time.
    retry = (body, signed_headers(SECRET, body, timestamp=int(time.time()) + 1))
    response = await post(bot, retry, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    await assert_replay_ignored(bot, response, before)
    assert home_rows(bot) == 1 and len(bot.slack.calls_to("views.publish")) == 1


async def test_a_retry_of_an_event_never_received_acts(bot: BotHarness) -> None:
    """A retry is not refused for being one: if the first delivery never arrived, the retry is the request."""
    body = home_opened(RELEASER)
    response = await post(bot, (body, signed_headers(SECRET, body)), **{"X-Slack-Retry-Num": "2"})
    assert response.status == 200
    await bot.slack.wait_for("views.publish")
    await quiet(bot)
    assert home_rows(bot) == 1


# --- bad input changes nothing, and leaves no claim behind -----------------------------------------------


async def test_a_forged_request_claims_nothing_so_the_genuine_one_still_acts(bot: BotHarness) -> None:
    bot.add_candidate("1.2.3")
    body, headers = captured_command(bot, "staging 1.2.3")
    forged = {**headers, "X-Slack-Signature": "v0=" + "0" * 64}
    response = await post(bot, (body, forged))
    assert response.status == 401
    assert bot.count("seen_requests") == 0 and bot.count("releases") == 0
    assert (await post(bot, (body, headers))).status == 200
    await bot.slack.wait_for("response_url")
    await quiet(bot)
    assert bot.deploys() == ["notify 1.2.3 staging 100"]


# --- the store ------------------------------------------------------------------------------------------


def test_a_claim_is_one_statement_over_every_key_and_old_keys_are_pruned(tmp_path: Path) -> None:
    store = Store(tmp_path / "bot.db")
    try:
        now = 1_800_000_000.0
        assert store.claim_request(["signature:a", "trigger_id:t1"], now)
        assert not store.claim_request(["signature:a", "trigger_id:t1"], now)  # the same request
        assert not store.claim_request(["signature:b", "trigger_id:t1"], now)  # re-signed, same trigger
        assert not store.claim_request(["signature:a", "trigger_id:t2"], now)  # same signature
        assert store.claim_request(["signature:c", "trigger_id:t3"], now + 1)
        plan = store.sql.query("EXPLAIN QUERY PLAN DELETE FROM seen_requests WHERE seen_at < ?", (now,))
        assert any("seen_requests_seen_at" in str(row["detail"]) for row in plan), plan
        # Long after Slack's window the keys are forgotten (by the next claim's periodic prune).
        later = now + KEEP_SECONDS + 120
        assert store.claim_request(["signature:z"], later)
        assert store.sql.one("SELECT count(*) AS n FROM seen_requests") == {"n": 1}
    finally:
        store.close()


async def test_a_claim_is_written_on_the_loop_when_the_write_lock_is_free_and_queued_when_it_is_not(
    tmp_path: Path,
) -> None:
    from bot.slack.app import Deliveries
    from bot.store.async_store import AsyncStore

    db = AsyncStore(Store(tmp_path / "bot.db"))
    try:
        now = time.time()
        await db.claim_request(["signature:warm"], now)  # the store thread prunes now; no prune due for a minute
        before = db.round_trips
        assert db.claim_now(["signature:a", "trigger_id:t1"], now) is True
        assert db.claim_now(["signature:b", "trigger_id:t1"], now) is False  # the same trigger: a replay
        assert db.round_trips == before  # neither went to the store thread
        # Another writer holds the write lock: the loop never waits for it ...
        other = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        started = time.perf_counter()
        assert db.claim_now(["signature:c"], now) is None
        assert time.perf_counter() - started < 0.5  # answered at once, not after the 5 s busy timeout
        deliveries = Deliveries(db)
        claims = [asyncio.ensure_future(deliveries.first([f"signature:q{i}"], "test")) for i in range(3)]
        replay = asyncio.ensure_future(deliveries.first(["signature:a"], "test"))
        await asyncio.sleep(0)  # each request tries the loop first, finds the lock taken and joins the queue
        queued = db.round_trips
        other.execute("COMMIT")
        other.close()
        # ... and the claims go through the store thread, which waits for the lock, each with its own verdict.
        assert await asyncio.gather(*claims) == [True, True, True]
        assert await replay is False
        assert 1 <= db.round_trips - queued <= 2  # in one or two batches, not one round trip each
        assert db.sync.sql.one("SELECT count(*) AS n FROM seen_requests WHERE key LIKE 'signature:q%'") == {"n": 3}
        # When old keys are due to be forgotten, the claim goes through the store thread, which prunes them.
        assert db.claim_now(["signature:d"], now + 61) is None
    finally:
        db.close()


async def test_an_in_memory_store_always_claims_through_the_store_thread() -> None:
    from bot.store.async_store import AsyncStore

    db = AsyncStore(Store(":memory:"))
    try:
        assert db.claim_now(["signature:a"], time.time()) is None
        assert await db.claim_request(["signature:a"], time.time()) is True
    finally:
        db.close()
